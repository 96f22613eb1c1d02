"""Tenant configuration: events and commands.

Plain values are JSON (bool, int, float, string, list, object). Secret values
never appear in plain text: they travel sealed (encrypted with the tenant's
data key) in `secrets`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from tenantplane.contracts.commands import Command, TenantCommand
from tenantplane.contracts.domains import DOMAIN_NAME_PATTERN
from tenantplane.contracts.envelope import Event
from tenantplane.contracts.ids import NAME_PATTERN
from tenantplane.contracts.sealed import SealedValue as SealedValue  # also from here
from tenantplane.contracts.subjects import Subjects
from tenantplane.contracts.values import JsonData

PoolName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ConfigKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
MAX_KEYS_PER_CHANGE = 1000


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


class _ConfigChange(_ConfigCommand):
    """A change of a tenant's config; with `if_version`, only if nobody changed it since.

    `if_version` is the tenant's config version as read (the sequence of its last
    config event, `config_version` in the read model; 0 for none): a
    read-modify-write that lost a race is refused, not applied over the winner.
    """

    if_version: int | None = Field(default=None, ge=0)


class SetConfig(_ConfigChange):
    """Set one or many keys (secret keys are sealed by the service)."""

    name: ClassVar[str] = "config.set"
    values: dict[ConfigKey, JsonData] = Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)


class UnsetConfig(_ConfigChange):
    """Remove keys."""

    name: ClassVar[str] = "config.unset"
    keys: tuple[ConfigKey, ...] = Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)


class ReplaceConfig(_ConfigChange):
    """Replace the whole config of a tenant."""

    name: ClassVar[str] = "config.replace"
    values: dict[ConfigKey, JsonData] = Field(max_length=MAX_KEYS_PER_CHANGE)


class RevertConfig(_ConfigChange):
    """Put a tenant's whole config back as it was at a point of its history: one
    `config.replaced` event (secrets included, sealed again with the current key).

    `to` names the point: a stream sequence, or a time.
    """

    name: ClassVar[str] = "config.revert"
    to: Annotated[int, Field(ge=0)] | AwareDatetime

    @property
    def to_seq(self) -> int | None:
        """The point as a sequence, if it is one."""
        return self.to if isinstance(self.to, int) else None

    @property
    def to_time(self) -> datetime | None:
        """The point as a time, if it is one."""
        return None if isinstance(self.to, int) else self.to


class ShowSealingKey(Command):
    """The installation's public key to seal secrets to for files (`tenantctl secrets
    seal`): what is sealed to it only the config service opens."""

    service: ClassVar[str] = "config"
    name: ClassVar[str] = "secret.sealing_key"


class RevealSecrets(_ConfigCommand):
    """Decrypt a tenant's secret values (all, or `keys`) for a pool that serves the tenant.

    The reply is sealed to `public_key`, a one-time X25519 key of the requester
    (base64), so nothing on the wire sees plaintext; every reveal is audited.
    """

    name: ClassVar[str] = "secret.reveal"
    keys: tuple[ConfigKey, ...] = ()
    pool: PoolName
    public_key: str = Field(pattern=r"^[A-Za-z0-9_-]{43}=$")
    job_id: str | None = Field(default=None, max_length=128)

    def subject(self, subjects: Subjects) -> str:
        return subjects.secret_reveal(self.tenant_id, self.pool)

    @classmethod
    def served_on(cls, subjects: Subjects) -> str:
        return subjects.all_secret_reveals()


class RevealDomainKey(_ConfigCommand):
    """A domain's key for one tenant's sealed fields (see `contracts.domains.sealed`).

    The key is derived from the tenant's data key for this domain alone, so a
    domain can open only its own sealed fields, and shredding the tenant's data
    key makes them unreadable. `key_id` names the data key that sealed a value
    (to open it); without it, the tenant's current key (to seal; refused for a
    tenant that is not active). The reply is sealed to `public_key`.
    """

    name: ClassVar[str] = "secret.domain_key"
    domain: str = Field(pattern=DOMAIN_NAME_PATTERN)
    key_id: str | None = Field(default=None, min_length=1, max_length=64)
    public_key: str = Field(pattern=r"^[A-Za-z0-9_-]{43}=$")

    def subject(self, subjects: Subjects) -> str:
        return subjects.domain_key_request(self.tenant_id, self.domain)

    @classmethod
    def served_on(cls, subjects: Subjects) -> str:
        return subjects.all_domain_key_requests()


COMMANDS: tuple[type[TenantCommand], ...] = (
    SetConfig,
    UnsetConfig,
    ReplaceConfig,
    RevertConfig,
    RevealSecrets,
    RevealDomainKey,
)
