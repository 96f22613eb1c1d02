"""Secret config values: sealed with per-tenant data keys wrapped by a master key.

- A tenant's data key is created on its first secret and stored, wrapped by
  the master key, in the SQL database, never in the log.
- Values enter the log only as ciphertext (`SealedValue`), tagged with the id
  of the data key that sealed them.
- Destroying a tenant's data keys (offboarding with shredding) makes its
  secrets unreadable in every copy of the log, without rewriting it. The
  destroyed rows leave nothing behind in the database's files: SQLite
  overwrites freed pages (`secure_delete`) and truncates its write-ahead log;
  PostgreSQL rewrites the key table (`VACUUM FULL`), so the dead row's bytes
  leave the table's files. Backups taken before keep the key; see
  docs/reliability.md for how long.
- Master keys rotate: the first key wraps, the others still unwrap, and
  `rewrap()` moves every data key to the first.
"""

from __future__ import annotations

import base64
import secrets as random
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts.config import SealedValue
from tenantplane.services.runtime.errors import (
    SecretUnavailable as SecretUnavailable,  # also from here
)
from tenantplane.services.security.sealing import StandingKey, open_text

metadata = MetaData()
tenant_keys = Table(
    "tp_tenant_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("namespace", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("wrapped", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def new_master_key() -> str:
    """A fresh master key (urlsafe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals and opens tenants' secret values."""

    def __init__(self, engine: AsyncEngine, namespace: str, master_keys: list[str]) -> None:
        if not master_keys:
            raise ValueError("at least one master key is needed to seal secrets")
        self.engine = engine
        self.namespace = namespace
        self._master = MultiFernet([Fernet(k.encode()) for k in master_keys])
        self._keys: dict[str, Fernet] = {}
        # The installation's keys for secrets kept sealed in files, one per master key:
        # the first seals, every one opens (so a rotation keeps old files readable).
        self.file_keys = [StandingKey.of(k.encode(), "sealed files") for k in master_keys]

    def open_file_value(self, text: str) -> Any:
        """The value of a `tenantctl secrets seal` text (any JSON value).

        Raises:
            InvalidRequest: not sealed to this installation's keys, or altered.
        """
        return orjson.loads(open_text(self.file_keys, text))

    async def seal(self, tenant_id: str, value: Any) -> SealedValue:
        """Encrypt `value` (any JSON value) with the tenant's current data key."""
        key_id, fernet = await self._current_key(tenant_id)
        return SealedValue(key_id=key_id, ciphertext=fernet.encrypt(orjson.dumps(value)).decode())

    async def open(self, tenant_id: str, sealed: SealedValue) -> Any:
        """Decrypt a sealed value of `tenant_id`.

        Raises:
            SecretUnavailable: the data key is gone (shredded) or belongs to another tenant.
        """
        fernet = await self._key(tenant_id, sealed.key_id)
        try:
            return orjson.loads(fernet.decrypt(sealed.ciphertext.encode()))
        except InvalidToken as e:
            raise SecretUnavailable(
                f"a secret of {tenant_id} does not open", tenant_id=tenant_id
            ) from e

    async def derived(
        self, tenant_id: str, purpose: str, key_id: str | None = None
    ) -> tuple[str, bytes]:
        """A key for `purpose` (a domain's sealed fields), derived from the tenant's data
        key `key_id` (default: the current one): (key id, a Fernet key).

        Whoever holds it opens only what was sealed for `purpose`; destroying the data
        key (shredding) destroys every key derived from it.

        Raises:
            SecretUnavailable: the data key is gone (shredded) or belongs to another tenant.
        """
        if key_id is None:
            key_id, _ = await self._current_key(tenant_id)
        data_key = base64.urlsafe_b64decode(await self._raw(tenant_id, key_id))
        derive = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None,
            info=f"tenantplane sealed fields/{purpose}/{key_id}".encode(),
        )  # fmt: skip
        return key_id, base64.urlsafe_b64encode(derive.derive(data_key))

    async def shred(self, tenant_id: str) -> int:
        """Destroy every data key of a tenant, on disk too; returns how many."""
        async with self.engine.begin() as conn:
            done = await conn.execute(delete(tenant_keys).where(*self._of(tenant_id)))
        self._keys = {k: f for k, f in self._keys.items() if not k.startswith(f"{tenant_id}/")}
        await self._scrub()
        return int(done.rowcount)

    async def _scrub(self) -> None:
        """Leave no copy of deleted rows in the database's files."""
        async with self.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "sqlite":
                # Freed pages were zeroed (`secure_delete`, set on every connection);
                # the WAL still holds the page as it was before: fold it in and cut it.
                await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                await autocommit.exec_driver_sql(f"VACUUM FULL {tenant_keys.name}")

    async def rewrap(self) -> int:
        """Re-wrap every data key with the first master key (after a rotation)."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(tenant_keys.c.key_id, tenant_keys.c.wrapped))).all()
            for key_id, wrapped in rows:
                rotated = self._master.rotate(wrapped.encode()).decode()
                await conn.execute(
                    update(tenant_keys)
                    .where(tenant_keys.c.key_id == key_id)
                    .values(wrapped=rotated)
                )
        return len(rows)

    def _of(self, tenant_id: str) -> tuple[Any, ...]:
        return (tenant_keys.c.namespace == self.namespace, tenant_keys.c.tenant_id == tenant_id)

    async def _current_key(self, tenant_id: str) -> tuple[str, Fernet]:
        async with self.engine.begin() as conn:
            query = select(tenant_keys.c.key_id).where(*self._of(tenant_id))
            row = (await conn.execute(query.order_by(tenant_keys.c.created_at.desc()))).first()
            if row is None:
                key_id = f"{tenant_id}/{random.token_hex(8)}"
                await conn.execute(
                    insert(tenant_keys).values(
                        key_id=key_id,
                        namespace=self.namespace,
                        tenant_id=tenant_id,
                        wrapped=self._master.encrypt(Fernet.generate_key()).decode(),
                        created_at=datetime.now(UTC),
                    )
                )
            else:
                key_id = row[0]
        return key_id, await self._key(tenant_id, key_id)

    async def _key(self, tenant_id: str, key_id: str) -> Fernet:
        cached = self._keys.get(_owned(tenant_id, key_id))
        if cached is None:
            cached = self._keys[key_id] = Fernet(await self._raw(tenant_id, key_id))
        return cached

    async def _raw(self, tenant_id: str, key_id: str) -> bytes:
        """The data key `key_id` of `tenant_id`, unwrapped."""
        _owned(tenant_id, key_id)
        async with self.engine.connect() as conn:
            query = select(tenant_keys.c.wrapped).where(tenant_keys.c.key_id == key_id)
            row = (await conn.execute(query.where(*self._of(tenant_id)))).first()
        if row is None:
            raise SecretUnavailable(
                f"the data key of {tenant_id}'s secrets was destroyed", tenant_id=tenant_id
            )
        try:
            return self._master.decrypt(row[0].encode())
        except InvalidToken as e:
            raise SecretUnavailable(
                "no configured master key opens this data key", tenant_id=tenant_id
            ) from e


def _owned(tenant_id: str, key_id: str) -> str:
    """`key_id`, if it is a key of `tenant_id` (a key id starts with its tenant's id)."""
    if not key_id.startswith(f"{tenant_id}/"):
        raise SecretUnavailable(
            f"key {key_id} is not a key of tenant {tenant_id}", tenant_id=tenant_id
        )
    return key_id
