"""The reachability walk that S5 relies on finds what a closure or attribute hides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.jobs import reachable


@dataclass
class Runner:
    secrets: dict[str, str]


def test_the_walk_finds_a_value_behind_a_closure_and_a_bound_method() -> None:
    # Given a context-like object whose callable closes over a runner holding a secret
    runner = Runner({"tb": "b-secret"})
    hidden: dict[str, Any] = {"fetch": lambda: runner.secrets}

    @dataclass
    class Leaky:
        tenant_id: str
        fetch: Any

    # When it is walked
    found, kinds = reachable(Leaky("ta", hidden["fetch"]), {"b-secret"})
    # Then the secret and the runner are reached
    assert found == {"b-secret"}
    assert any(k.endswith("Runner") for k in kinds)


def test_the_walk_of_plain_data_finds_nothing_else() -> None:
    found, _ = reachable({"a": ["x", ("y",)]}, {"b-secret"})
    assert found == set()
