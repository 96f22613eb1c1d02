"""The events operators discarded: every reader of the log skips them.

Void markers (`EventDiscarded`) are few, so each reader keeps all of them in
memory: loaded when it starts, and read again when it meets an event it
cannot read (the marker may be newer than its last look).
"""

from __future__ import annotations

import asyncio
from collections.abc import Container

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from tenantplane.contracts import discards
from tenantplane.contracts.discards import EventDiscarded
from tenantplane.contracts.errors import DecodeError
from tenantplane.contracts.registry import EventRegistry
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.consumers import read_raw
from tenantplane.services.runtime.errors import EventLogUnavailable

# Only markers are read here: their registry alone (not every event of the control plane).
_MARKERS = EventRegistry.of(discards.EVENTS)


class Discards:
    """The (stream, sequence) of every discarded event."""

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self.js, self.subjects = js, subjects
        # The streams whose events can be discarded (see `DiscardEvent`): a reader of
        # another stream (a domain's) never reads the markers, nor needs the right to.
        self.streams = {subjects.control_stream, subjects.jobs_stream}
        self._discarded: set[tuple[str, int]] = set()
        self._read_up_to = 0
        self._lock = asyncio.Lock()

    @property
    def places(self) -> Container[tuple[str, int]]:
        """The (stream, sequence) of each discarded event as of the last refresh, and
        after later ones (the same set, for a reader's tight loop)."""
        return self._discarded

    def __contains__(self, place: tuple[str, int]) -> bool:
        """Whether the event at (stream, seq) is discarded, as of the last refresh."""
        return place in self._discarded

    async def contains(self, stream: str, seq: int) -> bool:
        """Whether the event at (stream, seq) is discarded, reading new markers if needed."""
        if (stream, seq) not in self._discarded:
            await self.refresh(stream)
        return (stream, seq) in self._discarded

    async def refresh(self, stream: str | None = None) -> None:
        """Read the markers appended since the last refresh (none when they concern
        only `stream` and its events cannot be discarded)."""
        if stream is not None and stream not in self.streams:
            return
        async with self._lock:
            try:
                await self._read_new()
            except EventLogUnavailable as e:
                if not isinstance(e.__cause__, NotFoundError):
                    raise
                # No control stream (a domain's own deployment): nothing was discarded.

    async def _read_new(self) -> None:
        stream = self.subjects.control_stream
        filter_ = self.subjects.all_discards()
        async for raw in read_raw(self.js, stream, filter_, start_seq=self._read_up_to + 1):
            self._read_up_to = raw.seq
            try:
                envelope = _MARKERS.decode(raw.data)
                self.subjects.check(raw.subject, envelope)
            except DecodeError:
                continue  # a marker that cannot be read discards nothing
            if isinstance(envelope.data, EventDiscarded):
                place = (self.subjects.stream_named(envelope.data.stream), envelope.data.seq)
                self._discarded.add(place)
