"""Which library exceptions mean a server did not answer, and the named error they become.

NATS, Redis and the SQL drivers each raise their own exceptions when a server
is down, restarting, electing a leader or behind a wrong URL. Where such an
exception crosses a boundary (a command reply, an SDK call, the CLI) it
becomes one `Unavailable`, so callers retry or report it instead of seeing
`internal` or a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import nats.errors
import nats.js.errors
import redis.exceptions
from sqlalchemy import exc as sql

from services.runtime.errors import EventLogUnavailable, StoreUnavailable, Unavailable

_NATS = (
    nats.errors.TimeoutError,  # and the flush, fetch and drain timeouts
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.ServiceUnavailableError,  # 503: no JetStream leader yet
    nats.js.errors.NoStreamResponseError,
)
_REDIS = (
    redis.exceptions.ConnectionError,  # and BusyLoadingError, AuthenticationError
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a failover made the server a replica
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
# SQLite reports a missing table as an OperationalError too; these are the outages.
_SQLITE_OUTAGES = ("unable to open", "database is locked", "disk i/o error")


def unavailable_from(error: BaseException) -> Unavailable | None:
    """The `Unavailable` that `error` means, or None when it is not a server outage."""
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, nats.errors.NoRespondersError):
        return Unavailable("nothing serves that request: is the service running?")
    if isinstance(error, _NATS):
        return EventLogUnavailable(f"NATS did not answer: {_reason(error)}")
    if isinstance(error, _REDIS):
        return StoreUnavailable(f"cannot reach Redis: {_reason(error)}", server="redis")
    if _sql_outage(error):
        orig = error.orig if isinstance(error, sql.DBAPIError) and error.orig else error
        return StoreUnavailable(
            f"cannot reach the SQL database: {_reason(orig)}", server="database"
        )
    if isinstance(error, ConnectionError | TimeoutError):
        return Unavailable(f"a server did not answer: {_reason(error)}")
    return None


@contextlib.contextmanager
def unavailable_raised() -> Iterator[None]:
    """Raise a server outage from inside the block as its `Unavailable` (from the original)."""
    try:
        yield
    except Exception as e:
        named = unavailable_from(e)
        if named is None or named is e:
            raise
        raise named from e


def _sql_outage(error: BaseException) -> bool:
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
        return any(outage in text for outage in _SQLITE_OUTAGES)
    return True


def _reason(error: BaseException) -> str:
    """The error's own words on one line (drivers like to add hints on new lines)."""
    return " ".join(str(error).split()) or type(error).__name__
