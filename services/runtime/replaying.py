"""Collect garbage less often while the process replays a log.

A replay decodes tens of thousands of events a second and keeps a batch of them
alive until its commit, so CPython's young generation fills every 700
allocations and each collection walks the batch again, and the older
generations are walked every few batches: together about 4 µs an event, a
third of what a projection's replay does besides reading. While any reader of
the process replays, the thresholds are raised to `REPLAY_THRESHOLDS` (never
lowered); when the last one is caught up, the thresholds the process had are
restored. Reference counting still frees everything that is not a cycle at
once; cycles wait a little longer.
"""

from __future__ import annotations

import gc

REPLAY_THRESHOLDS = (10_000, 100, 100)

_replaying = 0
_saved: tuple[int, int, int] | None = None


class Replay:
    """One reader's replay; `start` and `end` may each be called any number of times."""

    def __init__(self) -> None:
        self._on = False

    def start(self) -> None:
        global _replaying, _saved
        if self._on:
            return
        self._on = True
        _replaying += 1
        if _replaying == 1:
            _saved = gc.get_threshold()
            raised = (max(n, floor) for n, floor in zip(_saved, REPLAY_THRESHOLDS, strict=True))
            gc.set_threshold(*raised)

    def end(self) -> None:
        global _replaying, _saved
        if not self._on:
            return
        self._on = False
        _replaying -= 1
        if _replaying == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
