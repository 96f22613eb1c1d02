"""One active projector per projection among a service's replicas.

Replicas of a service all run its projectors. Without a leader each applies
every event and all but one lose the conditional commit and start again: the
read model stays right, but every replica pays for it and the losers thrash.
With a lease, one replica projects and the others stand by, ready to take over.

The lease is a JetStream subject, `<root>.leader.<projection>`, in a stream that
keeps one message per subject for `ttl_s` (`max_age`):

- acquire: publish expecting no message on the subject (an expired lease is gone);
- renew: publish expecting the last sequence this holder wrote;
- release: delete that message, so a standby takes over at once.

A holder that stops renewing (killed, partitioned) loses the lease when its
message expires; a standby then acquires it. A holder names itself by host,
process id and its place among the leases of its process, so a container that
restarts in the same pod (same host name, same pid) takes its lease back at
once instead of waiting it out. The projector's conditional commit still guards
the read model, so two holders for a moment (a paused process that wakes after
its lease expired) cannot corrupt it.
"""

from __future__ import annotations

import itertools
import os
import socket

from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.errors import EventLogUnavailable
from tenantplane.services.runtime.transient import NATS_UNAVAILABLE

TTL_S = 4.0
# Leases made by this process so far, by name: the n-th lease of a name is `.../n`.
_MADE: dict[str, itertools.count[int]] = {}


def holder_id(name: str) -> str:
    """Who holds lease `name` when this process does: the same after a restart of the
    process in the same place, different for each lease of the name in one process."""
    n = next(_MADE.setdefault(name, itertools.count()))
    return f"{socket.gethostname()}/{os.getpid()}/{n}"


async def ensure_leader_stream(
    js: JetStreamContext, subjects: Subjects, ttl_s: float = TTL_S, replicas: int = 1
) -> None:
    """Create (or update) the stream of leases."""
    config = StreamConfig(
        name=subjects.leader_stream,
        subjects=[subjects.leaders()],
        storage=StorageType.MEMORY,
        num_replicas=replicas,
        max_age=ttl_s,
        max_msgs_per_subject=1,
        allow_direct=True,
    )
    try:
        try:
            await js.update_stream(config)
        except NotFoundError:
            await js.add_stream(config)
    except (*NATS_UNAVAILABLE, APIError) as e:  # type: ignore[misc]
        raise EventLogUnavailable(f"cannot make the lease stream: {e!r}") from e


class Lease:
    """One lease, as one process tries to hold it. Its stream is kept in memory: when
    NATS restarts without it, the next write makes it again (`replicas` as settings say)."""

    def __init__(
        self, js: JetStreamContext, subjects: Subjects, name: str, replicas: int = 1
    ) -> None:
        self.js, self.subjects, self.replicas = js, subjects, replicas
        self.subject = subjects.leader(name)
        self.holder = holder_id(name)
        self._seq = 0  # the sequence of our last write; 0 while not held

    @property
    def held(self) -> bool:
        """Whether this process held the lease at its last acquire or renew."""
        return self._seq > 0

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; whether this process holds it now."""
        if self._seq:
            return await self.renew()
        if await self._write(0):
            return True
        # Ours from before a restart in the same place: take it back at once.
        held = await self._current()
        return held is not None and held[0] == self.holder and await self._write(held[1])

    async def renew(self) -> bool:
        """Keep the lease for another `ttl_s`; False once another holder has it."""
        return await self._write(self._seq) if self._seq else False

    async def release(self) -> None:
        """Give the lease up at once (a standby takes over without waiting it out)."""
        seq, self._seq = self._seq, 0
        if seq:
            try:
                await self.js.delete_msg(self.subjects.leader_stream, seq)
            except (*NATS_UNAVAILABLE, APIError):  # type: ignore[misc]
                return  # it expires by itself

    async def current(self) -> str | None:
        """Who holds the lease now (None: nobody)."""
        held = await self._current()
        return None if held is None else held[0]

    async def _current(self) -> tuple[str, int] | None:
        try:
            msg = await self.js.get_msg(
                self.subjects.leader_stream, subject=self.subject, direct=True
            )
        except NotFoundError:
            return None
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot read lease {self.subject}: {e!r}") from e
        return (msg.data or b"").decode(), int(msg.seq or 0)

    async def _write(self, expected: int) -> bool:
        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected)}
        try:
            try:
                ack = await self.js.publish(self.subject, self.holder.encode(), headers=headers)
            except NoStreamResponseError:  # NATS restarted: the leases went with it
                await ensure_leader_stream(self.js, self.subjects, replicas=self.replicas)
                ack = await self.js.publish(self.subject, self.holder.encode(), headers=headers)
        except APIError as e:
            if e.err_code == 10071:  # wrong last sequence: another holder
                self._seq = 0
                return False
            raise EventLogUnavailable(f"cannot write lease {self.subject}: {e!r}") from e
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot write lease {self.subject}: {e!r}") from e
        self._seq = ack.seq
        return True
