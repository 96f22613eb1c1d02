"""The envelope that wraps every event, and the base class of event data."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    create_model,
    model_validator,
)

from tenantplane.contracts.ids import PLATFORM, LoggedTenantId, Scope, new_event_id


class Message(BaseModel):
    """Base of every wire model: immutable, strict about unknown fields and numbers.

    NaN and the infinities are refused: JSON cannot carry them, and pydantic would
    write them as `null`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, defer_build=True)


class Event(Message):
    """Base of every event's data. Subclasses set `event_type` and `schema_version`."""

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    # The aggregate family the event belongs to; subjects.py turns it into a subject.
    family: ClassVar[str]
    # Whether its envelope may name the platform scope instead of a tenant (subjects.py
    # builds a subject for it then); every other event is about one tenant.
    platform_scoped: ClassVar[bool] = False


class Envelope(Message):
    """Metadata common to every event, around its typed `data`."""

    event_id: str = Field(min_length=1, max_length=128)
    type: str
    schema_version: int = Field(ge=1)
    tenant_id: Scope
    occurred_at: AwareDatetime
    actor: str = Field(min_length=1, max_length=256)
    reason: str = Field(default="", max_length=2048)
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None = Field(default=None, max_length=128)
    data: SerializeAsAny[Event]

    def __eq__(self, other: object) -> bool:
        # The registry decodes into subclasses that only narrow `data`'s type.
        if isinstance(other, Envelope):
            return self.__dict__ == other.__dict__
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.event_id)

    @model_validator(mode="after")
    def _type_matches_data(self) -> Self:
        if self.type != self.data.event_type or self.schema_version != self.data.schema_version:
            raise ValueError(
                f"envelope says {self.type}@v{self.schema_version} but data is "
                f"{self.data.event_type}@v{self.data.schema_version}"
            )
        if self.tenant_id == PLATFORM and not self.data.platform_scoped:
            raise ValueError(f"{self.type} is about one tenant, not {PLATFORM}")
        return self

    @classmethod
    def wrap(
        cls,
        data: Event,
        *,
        tenant_id: str,
        actor: str,
        reason: str = "",
        event_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Wrap event `data` in a new envelope, filling ids and time."""
        event_id = event_id or new_event_id()
        return cls(
            event_id=event_id,
            type=data.event_type,
            schema_version=data.schema_version,
            tenant_id=tenant_id,
            occurred_at=occurred_at or datetime.now(UTC),
            actor=actor,
            reason=reason,
            correlation_id=correlation_id or event_id,
            causation_id=causation_id,
            data=data,
        )

    def to_json(self) -> bytes:
        """The wire form of this envelope."""
        return self.model_dump_json().encode()

    @staticmethod
    def encode(
        data: Event, *, tenant_id: str, actor: str, event_id: str, occurred_at: datetime
    ) -> bytes:
        """The wire form of `wrap(data, ...)` without building the envelope model.

        For batches: the caller checks the tenant id and actor once for the batch;
        `data` was validated when it was built. Decoding gives the same envelope as
        `wrap` with the same fields (a property test holds the two together).
        """
        return orjson.dumps(
            {
                "event_id": event_id,
                "type": data.event_type,
                "schema_version": data.schema_version,
                "tenant_id": tenant_id,
                "occurred_at": occurred_at,
                "actor": actor,
                "reason": "",
                "correlation_id": event_id,
                "causation_id": None,
                "data": data.model_dump(mode="json"),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict of this envelope (for CLI output)."""
        result: dict[str, Any] = orjson.loads(self.to_json())
        return result


class _Typed(Envelope):
    """The base of `typed_envelope`'s classes: their fields state what `Envelope`
    checks after validation, so the check (a Python call per event decoded) is off."""

    def _type_matches_data(self) -> Self:  # type: ignore[override]  # a plain method: no check
        return self


@functools.cache
def typed_envelope(event_cls: type[Event]) -> type[Envelope]:
    """`Envelope` narrowed to `event_cls`: its type, version, data and tenant scope.

    What the base class checks after validation, this one's fields say, so pydantic
    validates the whole envelope in one pass and its JSON Schema states every rule.
    Its instances are `Envelope`s, and equal to an `Envelope` with the same fields.
    """
    scope: Any = Scope if event_cls.platform_scoped else LoggedTenantId
    event_type: Any = Literal[event_cls.event_type]
    version: Any = Literal[event_cls.schema_version]
    typed: type[Envelope] = create_model(
        f"Envelope[{event_cls.__name__}]",
        __base__=_Typed,
        __doc__=Envelope.__doc__,
        type=(event_type, ...),
        schema_version=(version, ...),
        tenant_id=(scope, ...),
        data=(event_cls, ...),
    )
    return typed
