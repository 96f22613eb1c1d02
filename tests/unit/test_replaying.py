"""The collector's threshold while readers replay, and after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tenantplane.services.runtime.replaying import REPLAY_THRESHOLDS, Replay


@pytest.fixture(autouse=True)
def threshold() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_a_replay_raises_the_first_threshold_and_its_end_restores_it() -> None:
    replay = Replay()
    replay.start()
    assert gc.get_threshold() == REPLAY_THRESHOLDS
    replay.end()
    assert gc.get_threshold() == (700, 10, 10)


def test_the_threshold_is_restored_when_the_last_of_overlapping_replays_ends() -> None:
    first, second = Replay(), Replay()
    first.start()
    second.start()
    first.end()
    assert gc.get_threshold()[0] == REPLAY_THRESHOLDS[0]
    second.end()
    assert gc.get_threshold()[0] == 700


def test_starting_or_ending_twice_counts_once() -> None:
    first, second = Replay(), Replay()
    first.start()
    first.start()
    second.start()
    second.end()
    second.end()  # must not end `first`'s replay too
    assert gc.get_threshold()[0] == REPLAY_THRESHOLDS[0]
    first.end()
    assert gc.get_threshold()[0] == 700


def test_a_process_that_collects_less_often_already_keeps_its_threshold() -> None:
    gc.set_threshold(50_000, 10, 1_000)
    replay = Replay()
    replay.start()
    assert gc.get_threshold() == (50_000, REPLAY_THRESHOLDS[1], 1_000)
    replay.end()
    assert gc.get_threshold() == (50_000, 10, 1_000)
