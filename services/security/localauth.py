"""The NATS users of the local system (`tenantctl dev up`): least privilege by default.

The local NATS starts with the generated authorization of every role (see
`roles.py`): each service of `dev up` connects as its own user, each worker
pool as its pool's, and `tenantctl` and the SDK, pointed at the local system,
as the operator. Passwords live in the data dir (`nats-credentials.json`, mode
0600) and the server's configuration beside it (`nats/auth.conf`). A dedicated
pool the reconciler starts later gets its user first: the configuration is
rewritten and the server reloads it, without a restart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pydantic import SecretStr

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.errors import InvalidRequest
from tenantplane.services.runtime.localstate import LocalSystem
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.security.natsconfig import Credentials, authorization
from tenantplane.services.security.roles import DomainGrant, Role, RoleBook

CREDENTIALS_FILE = "nats-credentials.json"
OPERATOR = "operator"


def credentials_path(data_dir: Path) -> Path:
    """Where a data dir keeps its NATS passwords."""
    return data_dir / CREDENTIALS_FILE


def login(settings: Settings, role: str, credentials: Credentials) -> Settings:
    """`settings` connecting as `role`, with its password and its own inbox prefix."""
    if role not in credentials.passwords:
        raise InvalidRequest(
            f"the local system has no NATS user {role!r}; "
            f"its users: {', '.join(sorted(credentials.passwords))}"
        )
    return settings.model_copy(
        update={
            "nats_user": role,
            "nats_password": SecretStr(credentials.passwords[role]),
            "nats_inbox_prefix": Role(role, (), ()).inbox_prefix,
        }
    )


def local_login(settings: Settings) -> Settings:
    """`settings` logged in to the running local system's NATS, when that is where they
    connect and it has users: as `nats_user` if set (its password from the data dir),
    else as the operator. Otherwise `settings` as they are."""
    if settings.nats_url or settings.nats_password is not None or settings.nats_creds_file:
        return settings
    local = LocalSystem.read(settings.data_dir)
    if local is None or not local.nats_credentials:
        return settings
    credentials = Credentials.load(Path(local.nats_credentials))
    return login(settings, settings.nats_user or OPERATOR, credentials)


class LocalAuth:
    """The roles of a local system, their passwords and the server's configuration."""

    def __init__(
        self,
        data_dir: Path,
        subjects: Subjects,
        pools: Iterable[str],
        domains: Sequence[DomainGrant] = (),
    ) -> None:
        self.config_path = data_dir / "nats" / "auth.conf"
        self.credentials_path = credentials_path(data_dir)
        self.subjects = subjects
        # Pools given users before (dedicated ones the reconciler started) keep them, so
        # that a restart needs no reload: a reload races connections being set up.
        known = self.credentials_path
        before = Credentials.load(known).passwords if known.exists() else {}
        self.pools = set(pools) | {r.removeprefix("pool-") for r in before if r.startswith("pool-")}
        self.domains = list(domains)
        self.credentials = Credentials({})
        # Makes the server read its configuration again (set once it runs).
        self.reload: Callable[[], None] = lambda: None

    def write(self) -> Path:
        """Write the passwords (new ones only for new roles) and the server's
        configuration; returns the configuration's path."""
        roles = RoleBook(self.subjects, self.pools, self.domains).roles()
        self.credentials = Credentials.kept(self.credentials_path, roles)
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(authorization(roles, self.credentials))
        return self.config_path

    def as_role(self, settings: Settings, role: str) -> Settings:
        """`settings` connecting as `role`."""
        return login(settings, role, self.credentials)

    def as_pool(self, settings: Settings, pool: str) -> Settings:
        """`settings` connecting as pool `pool`'s user, created (and the server reloaded)
        when the pool is new."""
        if pool not in self.pools:
            self.pools.add(pool)
            self.write()
            self.reload()
        return self.as_role(settings, RoleBook(self.subjects, [pool]).pool(pool).name)
