"""Tenant configuration: events and commands.

Plain values are JSON (bool, int, float, string, list, object). Secret values
never appear in plain text: they travel sealed (encrypted with the tenant's
data key) in `secrets`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.envelope import Event, Message
from tenantplane.contracts.subjects import Subjects
from tenantplane.contracts.values import JsonData

ConfigKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
MAX_KEYS_PER_CHANGE = 1000


class SealedValue(Message):
    """A secret value encrypted with a tenant data key."""

    key_id: str = Field(min_length=1, max_length=64)
    ciphertext: str = Field(min_length=1, max_length=16384)


class _Config(Event):
    family: ClassVar[str] = "config"


class ConfigValuesSet(_Config):
    """Keys were set to new values."""

    event_type: ClassVar[str] = "config.values_set"
    values: dict[ConfigKey, JsonData] = Field(default_factory=dict, max_length=MAX_KEYS_PER_CHANGE)
    secrets: dict[ConfigKey, SealedValue] = Field(
        default_factory=dict, max_length=MAX_KEYS_PER_CHANGE
    )


class ConfigKeysUnset(_Config):
    """Keys were removed."""

    event_type: ClassVar[str] = "config.keys_unset"
    keys: tuple[ConfigKey, ...] = Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)


class ConfigReplaced(_Config):
    """The whole config was replaced: keys not named are removed."""

    event_type: ClassVar[str] = "config.replaced"
    values: dict[ConfigKey, JsonData] = Field(default_factory=dict, max_length=MAX_KEYS_PER_CHANGE)
    secrets: dict[ConfigKey, SealedValue] = Field(
        default_factory=dict, max_length=MAX_KEYS_PER_CHANGE
    )


EVENTS: tuple[type[Event], ...] = (ConfigValuesSet, ConfigKeysUnset, ConfigReplaced)


class _ConfigCommand(TenantCommand):
    service: ClassVar[str] = "config"


class SetConfig(_ConfigCommand):
    """Set one or many keys (secret keys are sealed by the service)."""

    name: ClassVar[str] = "config.set"
    values: dict[ConfigKey, JsonData] = Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)


class UnsetConfig(_ConfigCommand):
    """Remove keys."""

    name: ClassVar[str] = "config.unset"
    keys: tuple[ConfigKey, ...] = Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)


class ReplaceConfig(_ConfigCommand):
    """Replace the whole config of a tenant."""

    name: ClassVar[str] = "config.replace"
    values: dict[ConfigKey, JsonData] = Field(max_length=MAX_KEYS_PER_CHANGE)


class RevealSecrets(_ConfigCommand):
    """Decrypt a tenant's secret values (all, or `keys`) for that tenant's own reader."""

    name: ClassVar[str] = "secret.reveal"
    keys: tuple[ConfigKey, ...] = ()

    def subject(self, subjects: Subjects) -> str:
        return subjects.secret_reveal(self.tenant_id)

    @classmethod
    def served_on(cls, subjects: Subjects) -> str:
        return subjects.all_secret_reveals()


COMMANDS: tuple[type[TenantCommand], ...] = (SetConfig, UnsetConfig, ReplaceConfig, RevealSecrets)
