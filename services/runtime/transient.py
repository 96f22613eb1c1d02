"""Which errors are worth retrying: infrastructure that is away for a while.

Redis restarting (connection refused, `LOADING` while it reads its data set),
NATS reconnecting or a stream electing a leader (timeouts, no responders) and
our own wrappers of them (`unavailable`) pass by themselves; a loop retries
them instead of crashing. Everything else is a fault to report.
"""

from __future__ import annotations

import asyncio

from nats.errors import (
    ConnectionClosedError,
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import TryAgainError

from contracts.commands import ErrorCode
from services.runtime.errors import TenantplaneError

# NATS did not answer in time, or a stream has no leader (yet): try again.
NATS_UNAVAILABLE: tuple[type[Exception], ...] = (
    NatsTimeoutError,
    asyncio.TimeoutError,
    NoRespondersError,
    ConnectionClosedError,
    NoStreamResponseError,
    ServiceUnavailableError,
)
_TRANSIENT: tuple[type[BaseException], ...] = (
    *NATS_UNAVAILABLE,
    ConnectionError,
    ConnectionReconnectingError,
    StaleConnectionError,
    OutboundBufferLimitError,
    RedisConnectionError,  # includes BusyLoadingError: Redis is loading its data set
    RedisTimeoutError,
    TryAgainError,
)


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is infrastructure that may come back."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, TenantplaneError) and seen.code is ErrorCode.UNAVAILABLE:
            return True
        if isinstance(seen, _TRANSIENT):
            return True
        seen = seen.__cause__
    return False


def describe_error(error: BaseException) -> str:
    """`Type: message` of an error, one line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
