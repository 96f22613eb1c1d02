"""Ordered consumers: replaying a stream into Python, and following it live.

An ordered consumer leaves no server-side state to clean up, the client
repairs gaps, and delivering to a callback is the fastest way to stream a log
into Python (about twice the rate of pulling messages one by one).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.errors import EventLogUnavailable
from tenantplane.services.runtime.transient import NATS_UNAVAILABLE

_V1_TOKENS = 9  # reply subject tokens of a JetStream delivery without a domain


class RawMessage(NamedTuple):
    """A message read back from a stream, before decoding.

    A named tuple: one is made per message of every replay, and a tuple is built
    in a third of a frozen dataclass's time.
    """

    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]
    num_pending: int
    # Unix time the stream stored the message (0 when unknown).
    stored_at: float = 0.0


async def read_raw(
    js: JetStreamContext,
    stream: str,
    filters: str | Sequence[str],
    *,
    start_seq: int = 1,
    start_time: datetime | None = None,
    idle_timeout_s: float = 10.0,
) -> AsyncIterator[RawMessage]:
    """Messages of `stream` matching `filters` from a point to the current head.

    An ordered consumer delivering to a callback: no server-side state to clean
    up, gaps are repaired by the client, and it is the fastest way to stream a
    log into Python (about twice the rate of pulling messages one by one).
    """
    inbox: deque[RawMessage] = deque()
    arrived = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        inbox.append(to_raw(msg))
        arrived.set()

    try:
        sub = await js.subscribe(
            "",
            stream=stream,
            ordered_consumer=True,
            config=replay_config(filters, start_seq, start_time),
            cb=on_msg,
        )
    except (*NATS_UNAVAILABLE, APIError) as e:  # type: ignore[misc]
        said = getattr(e, "description", None) or repr(e)
        raise EventLogUnavailable(f"cannot read {filters} from {stream}: {said}") from e
    try:
        if await nothing_to_replay(sub):
            return
        while True:
            while not inbox:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), idle_timeout_s)
                except TimeoutError as e:
                    raise EventLogUnavailable(f"replay of {filters} stalled") from e
            raw = inbox.popleft()
            yield raw
            if raw.num_pending == 0:
                return
    finally:
        await quietly_unsubscribe(sub)


async def follow(
    js: JetStreamContext,
    subjects: Subjects,
    filters: Sequence[str],
    cb: Callable[[Msg], Awaitable[None]],
    start_seq: int = 1,
) -> JetStreamContext.PushSubscription:
    """Deliver every event matching `filters` from `start_seq` on, then live, to `cb`.

    An ordered consumer (see `read_raw`) with client-side buffering unbounded:
    JetStream's flow control paces delivery to what the callback takes.
    """
    return await js.subscribe(
        "",
        stream=subjects.stream_for(filters[0]),
        ordered_consumer=True,
        config=replay_config(filters, start_seq, None),
        cb=cb,
        idle_heartbeat=2.0,
        pending_msgs_limit=-1,
        pending_bytes_limit=-1,
    )


async def nothing_to_replay(sub: JetStreamContext.PushSubscription) -> bool:
    """Whether a fresh subscription has nothing to deliver at all.

    `num_pending` alone is not enough: right after subscribing, the server may
    already have pushed every message into the client's buffer (pending 0)
    before the callback has seen any of them. Replay is over when a message
    arrives with `num_pending == 0`, or when nothing was pending or delivered.
    """
    info = await sub.consumer_info()
    delivered = info.delivered.consumer_seq if info.delivered else 0
    return not info.num_pending and not delivered


def replay_config(
    filters: str | Sequence[str], start_seq: int, start_time: datetime | None
) -> ConsumerConfig:
    subjects = [filters] if isinstance(filters, str) else list(filters)
    # A replay consumer left behind (a crashed reader) is removed after 5 s.
    config = ConsumerConfig(filter_subjects=subjects, inactive_threshold=5.0)
    if start_time is not None:
        config.deliver_policy = DeliverPolicy.BY_START_TIME
        config.opt_start_time = start_time
    elif start_seq > 1:
        config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = start_seq
    else:
        config.deliver_policy = DeliverPolicy.ALL
    return config


def to_raw(msg: Msg, *, headers: bool = True) -> RawMessage:
    """A message a consumer delivered, as a `RawMessage`.

    Reads the stream sequence, time and pending count straight from the reply
    subject: the same fields as `msg.metadata`, without building its objects
    (this runs once per message of every replay). The tuple is built without the
    named tuple's keyword `__new__`: 0.87 µs a message instead of 1.37.
    """
    tokens = (msg.reply or "").split(".")
    # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>, or the form
    # with <domain>.<account hash> after ACK and a random token at the end.
    first = 5 if len(tokens) == _V1_TOKENS else 7
    if len(tokens) < first + 4 or tokens[0] != "$JS":
        raise EventLogUnavailable(f"not a JetStream delivery: {msg.subject}")
    seq, num_pending, stored_at = int(tokens[first]), int(tokens[first + 3]), tokens[first + 2]
    kept = dict(msg.headers or {}) if headers else {}
    fields = (seq, msg.subject, msg.data, kept, num_pending, int(stored_at) / 1e9)
    return tuple.__new__(RawMessage, fields)


async def quietly_unsubscribe(sub: JetStreamContext.PushSubscription) -> None:
    try:
        await sub.unsubscribe()
    except Exception:
        return
