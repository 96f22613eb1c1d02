"""The config schema: declared keys with type, bounds and defaults; checks every write."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tenantplane.contracts.commands import Command
from tenantplane.contracts.config import ReplaceConfig, SetConfig
from tenantplane.contracts.schema import command_path, command_schema
from tenantplane.contracts.values import INT_MAX, INT_MIN
from tenantplane.services.runtime.errors import InvalidConfigValue

KeyType = Literal["bool", "int", "float", "string", "json"]
_PYTHON: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "string": (str,),
}
_JSON_TYPE = {"bool": "boolean", "int": "integer", "float": "number", "string": "string"}


# A pool's name becomes part of queue and Kubernetes object names.
POOL_NAME = r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?"


class KeySpec(BaseModel):
    """What one config key may hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: KeyType
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    max_length: int | None = Field(default=None, ge=0)
    # A regular expression a string value must match in full.
    pattern: str | None = None
    secret: bool = False
    description: str = ""

    def check(self, key: str, value: Any) -> Any:
        """Return `value` if it fits this spec; raise `InvalidConfigValue` naming the rule
        (and the value, unless it is a secret's)."""
        shown = "the secret value" if self.secret else repr(value)
        if self.type != "json" and (
            not isinstance(value, _PYTHON[self.type])
            or (self.type != "bool" and isinstance(value, bool))
        ):
            raise InvalidConfigValue(
                f"{key}: expected {self.type}, got {type(value).__name__}", key=key
            )
        if self.minimum is not None and value < self.minimum:
            raise InvalidConfigValue(
                f"{key}: {shown} is below the minimum {self.minimum:g}", key=key
            )
        if self.maximum is not None and value > self.maximum:
            raise InvalidConfigValue(
                f"{key}: {shown} is above the maximum {self.maximum:g}", key=key
            )
        if self.choices is not None and value not in self.choices:
            raise InvalidConfigValue(f"{key}: {shown} is not one of {list(self.choices)}", key=key)
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            raise InvalidConfigValue(f"{key}: longer than {self.max_length} characters", key=key)
        if self.pattern is not None and not re.fullmatch(self.pattern, str(value)):
            raise InvalidConfigValue(
                f"{key}: {shown} does not match {self.pattern}"
                + (f" ({self.description})" if self.description else ""),
                key=key,
            )
        return value

    def json_schema(self) -> dict[str, Any]:
        """What `check` takes, as JSON Schema (of the key's value alone).

        Two rules JSON Schema cannot say: an `int` key refuses `3.0` (JSON Schema's
        `integer` takes it), and a pattern on a value that is not a string is checked
        against its text.
        """
        schema: dict[str, Any] = {"type": _JSON_TYPE[self.type]} if self.type != "json" else {}
        low, high = self.minimum, self.maximum
        if self.type == "int":
            # What JSON carries into an int exactly (a float beyond is refused as a float).
            low = INT_MIN if low is None else max(low, INT_MIN)
            high = INT_MAX if high is None else min(high, INT_MAX)
        bounds = {
            "minimum": low,
            "maximum": high,
            "enum": None if self.choices is None else list(self.choices),
            "maxLength": self.max_length,
            "pattern": None if self.pattern is None else f"^(?:{self.pattern})$",
            "default": self.default,
            "description": self.description or None,
        }
        schema.update({k: v for k, v in bounds.items() if v is not None})
        return schema


class ConfigSchema(BaseModel):
    """Declared keys, and what to do with keys nobody declared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: dict[str, KeySpec] = Field(default_factory=dict)
    unknown: Literal["allow", "reject"] = "allow"
    # Undeclared keys under these prefixes are secret too (e.g. `secret.api_token`).
    secret_prefixes: tuple[str, ...] = ("secret.",)

    def defaults(self) -> dict[str, Any]:
        """The default of every declared key that has one."""
        return {k: s.default for k, s in self.keys.items() if s.default is not None}

    @classmethod
    def load(cls, path: Path | None) -> ConfigSchema:
        """The schema in a JSON file, or the built-in one."""
        if path is None:
            return DEFAULT_SCHEMA
        return cls.model_validate(json.loads(path.read_text()))

    def check(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validate every value; the first failure is raised."""
        for key, value in values.items():
            spec = self.keys.get(key)
            if spec is None:
                if self.unknown == "reject":
                    raise InvalidConfigValue(f"{key}: not a declared config key", key=key)
                continue
            spec.check(key, value)
        return values

    def command_schemas(self) -> dict[str, dict[str, Any]]:
        """The schemas of `config.set` and `config.replace` with this schema's keys in them.

        By export path (`contracts.schema.command_path`): they replace the generic ones,
        whose values may be any JSON. Declared keys get their type and bounds; other
        keys stay open unless `unknown` is `reject`.
        """
        return {
            command_path(cls): self._with_keys(command_schema(cls))
            for cls in (SetConfig, ReplaceConfig)
        }

    def _with_keys(self, schema: dict[str, Any]) -> dict[str, Any]:
        values = schema["properties"]["values"]
        item = values["additionalProperties"]
        declared = {key: {"allOf": [item, spec.json_schema()]} for key, spec in self.keys.items()}
        rest = item if self.unknown == "allow" else False
        schema["properties"]["values"] = {
            **values,
            "properties": declared,
            "additionalProperties": rest,
        }
        return schema

    def secrets_of(self, command: Command) -> list[Any]:
        """The secret values a command carries (those of secret keys it sets)."""
        if not isinstance(command, SetConfig | ReplaceConfig):
            return []
        return [v for k, v in command.values.items() if self.is_secret(k)]

    def is_secret(self, key: str) -> bool:
        """Whether values of `key` are sealed before they enter the log."""
        spec = self.keys.get(key)
        if spec is not None:
            return spec.secret
        return key.startswith(self.secret_prefixes)


DEFAULT_SCHEMA = ConfigSchema(
    keys={
        "rate_limit": KeySpec(type="int", minimum=0, description="API requests per second"),
        "jobs.max_concurrency": KeySpec(
            type="int", minimum=1, maximum=10_000, default=4, description="jobs running at once"
        ),
        "jobs.rate_per_minute": KeySpec(
            type="int", minimum=0, default=600, description="jobs admitted per minute"
        ),
        "jobs.weight": KeySpec(
            type="float",
            minimum=0.01,
            maximum=1000,
            default=1,
            description="share of its pool against other waiting tenants (1: an equal turn)",
        ),
        "jobs.pool": KeySpec(
            type="string",
            pattern=POOL_NAME,
            description="worker pool: lowercase letters, digits and '-', at most 40",
        ),
        "features": KeySpec(type="json", description="feature flags"),
    },
    unknown="allow",
)
