"""Which errors mean infrastructure is away for a while, and the named error they become.

Redis restarting (connection refused, `LOADING` while it reads its data set),
NATS reconnecting or a stream electing a leader (timeouts, no responders), a
SQL database that cannot be reached, and our own wrappers of them
(`unavailable`) pass by themselves: a loop retries them instead of crashing,
and where one crosses a boundary (a command reply, an SDK call, the CLI) it
becomes one `Unavailable`, so callers retry or report it instead of seeing
`internal` or a traceback. Everything else is a fault to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from nats.errors import (
    ConnectionClosedError,
    ConnectionDrainingError,
    ConnectionReconnectingError,
    NoRespondersError,
    NoServersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError
from redis.exceptions import ClusterDownError, ReadOnlyError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenantplane.services.runtime.errors import EventLogUnavailable, StoreUnavailable, Unavailable

# NATS did not answer in time, or a stream has no leader (yet): try again.
NATS_UNAVAILABLE: tuple[type[Exception], ...] = (
    NatsTimeoutError,  # and the flush, fetch and drain timeouts
    asyncio.TimeoutError,
    NoRespondersError,
    ConnectionClosedError,
    NoStreamResponseError,
    ServiceUnavailableError,  # 503: no JetStream leader yet
)
_NATS_AWAY: tuple[type[Exception], ...] = (
    NatsTimeoutError,
    ConnectionClosedError,
    ConnectionDrainingError,
    ConnectionReconnectingError,
    NoServersError,
    NoStreamResponseError,
    OutboundBufferLimitError,
    ServiceUnavailableError,
    StaleConnectionError,
)
_REDIS_AWAY: tuple[type[Exception], ...] = (
    RedisConnectionError,  # and BusyLoadingError: Redis is loading its data set
    RedisTimeoutError,
    ReadOnlyError,  # a failover made the server a replica
    TryAgainError,
    ClusterDownError,
)
# SQLite reports a missing table as an OperationalError too; these are the outages.
_SQLITE_AWAY = ("unable to open", "database is locked", "disk i/o error")


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is infrastructure that may come back."""
    seen: BaseException | None = error
    while seen is not None:
        if unavailable_from(seen) is not None:
            return True
        seen = seen.__cause__
    return False


def unavailable_from(error: BaseException) -> Unavailable | None:
    """The `Unavailable` that `error` means, or None when it is not infrastructure away."""
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, NoRespondersError):
        return Unavailable("nothing serves that request: is the service running?")
    if isinstance(error, _NATS_AWAY):
        return EventLogUnavailable(f"NATS did not answer: {_reason(error)}")
    if isinstance(error, _REDIS_AWAY):
        return StoreUnavailable(f"cannot reach Redis: {_reason(error)}", server="redis")
    if _sql_away(error):
        orig = getattr(error, "orig", None) or error
        return StoreUnavailable(
            f"cannot reach the SQL database: {_reason(orig)}", server="database"
        )
    if isinstance(error, ConnectionError | TimeoutError):
        return Unavailable(f"a server did not answer: {_reason(error)}")
    return None


@contextlib.contextmanager
def unavailable_raised() -> Iterator[None]:
    """Raise infrastructure away inside the block as its `Unavailable` (from the original)."""
    try:
        yield
    except Exception as e:
        named = unavailable_from(e)
        if named is None or named is e:
            raise
        raise named from e


def describe_error(error: BaseException) -> str:
    """`Type: message` of an error, one line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _sql_away(error: BaseException) -> bool:
    # Looked up, not imported: a process that loaded no SQL driver (an SDK client)
    # raises no SQL error, and need not load SQLAlchemy to say so.
    sql: Any = sys.modules.get("sqlalchemy.exc")
    if sql is None:
        return False
    if isinstance(error, sql.DisconnectionError | sql.TimeoutError):
        return True
    if not isinstance(error, sql.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sql.OperationalError):
        return False
    if "sqlite" in type(error.orig).__module__:
        text = str(error.orig).lower()
        return any(away in text for away in _SQLITE_AWAY)
    return True


def _reason(error: BaseException) -> str:
    """The error's own words on one line (drivers like to add hints on new lines)."""
    return " ".join(str(error).split()) or type(error).__name__
