"""Channel addresses: the subjects `Subjects` builds, with `{parameters}` for their variable tokens.

An address is never spelled here. The subject is built by the code the services
run (`Subjects`, a command's `subject`, `Subjects.for_event`) from a stand-in
value per parameter, and each stand-in token is then replaced by `{parameter}`;
so the document cannot drift from the subjects on the wire. NATS wildcards have
no place in an AsyncAPI address, and none is left in one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from tenantplane.contracts.ids import PLATFORM

M = TypeVar("M", bound=BaseModel)

# What each parameter stands for (the parameter objects' descriptions).
PARAMETERS: Mapping[str, str] = {
    "tenant": "A tenant id: 1-63 lowercase letters, digits and inner hyphens.",
    "scope": f"A tenant id, or `{PLATFORM}` for events about the platform itself.",
    "service": "A service name (lowercase letters, digits, `-` and `_`).",
    "schedule": "A schedule id (lowercase letters, digits, `-` and `_`).",
    "job": "A job id: lowercase letters, digits and inner hyphens (a UUID when "
    "tenantplane makes it).",
    "pool": "A worker pool's name (lowercase letters, digits, `-` and `_`).",
    "domain": "A domain's name: 2-32 lowercase letters, digits and inner hyphens.",
    "aggregateId": "The id of one aggregate of the domain: 1-128 letters, digits, `-` and `_`.",
    "rollout": "A config rollout's name (lowercase letters, digits, `-` and `_`).",
    "projection": "A projection's name (lowercase letters, digits, `-` and `_`), e.g. `config`.",
}
# The model fields whose value stands in a subject, and the parameter each is.
FIELD_PARAMETERS: Mapping[str, str] = {
    "tenant_id": "tenant",
    "service": "service",
    "schedule_id": "schedule",
    "job_id": "job",
    "pool": "pool",
    "domain": "domain",
    "rollout": "rollout",
}


def stand_in(parameter: str) -> str:
    """A value every validator of its kind takes, and no fixed token of a subject is."""
    return f"zz-{parameter.lower()}-zz"


@dataclass(frozen=True)
class Address:
    """A channel's address and the parameters in it, in order."""

    address: str
    parameters: tuple[str, ...]

    def channel(self, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The address and parameter objects of a channel (`overrides` describe some anew)."""
        described = {**PARAMETERS, **(overrides or {})}
        channel: dict[str, Any] = {"address": self.address}
        if self.parameters:
            channel["parameters"] = {p: {"description": described[p]} for p in self.parameters}
        return channel

    def filter(self) -> str:
        """The NATS filter matching every subject of this address."""
        tokens = ["*" if t.startswith("{") else t for t in self.address.split(".")]
        return ".".join(tokens)


def address(build: Callable[..., str], *parameters: str) -> Address:
    """The address of the subjects `build(stand-in, ...)` makes, one argument per parameter."""
    found = parameterized(build(*(stand_in(p) for p in parameters)), parameters)
    if sorted(found.parameters) != sorted(parameters):
        raise ValueError(f"{found.address!r} does not hold each of {parameters} once")
    return found


def parameterized(subject: str, parameters: Iterable[str]) -> Address:
    """`subject` with the stand-in token of any of `parameters` replaced by `{parameter}`."""
    by_token = {stand_in(p): p for p in parameters}
    tokens = subject.split(".")
    if any(t in ("*", ">") for t in tokens):
        raise ValueError(f"{subject!r} is a filter, not one subject")
    replaced = [f"{{{by_token[t]}}}" if t in by_token else t for t in tokens]
    return Address(".".join(replaced), tuple(by_token[t] for t in tokens if t in by_token))


def stand_in_model(model: type[M], extra: Mapping[str, str] | None = None) -> tuple[M, list[str]]:
    """An unvalidated `model` whose fields that can stand in a subject hold stand-ins.

    Returns the instance and the parameters it stands in for. Only subject
    builders read it: they look at these fields alone.
    """
    named = {**FIELD_PARAMETERS, **(extra or {})}
    chosen = {name: named[name] for name in model.model_fields if name in named}
    instance = model.model_construct(None, **{name: stand_in(p) for name, p in chosen.items()})
    return instance, list(chosen.values())
