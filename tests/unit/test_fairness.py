"""Deficit round-robin: a flood never starves a quiet tenant."""

from __future__ import annotations

from tenantplane.services.scheduler.fairness import FairQueue


def drain(queue: FairQueue, count: int, **options: object) -> list[tuple[str, str]]:
    order = []
    for _ in range(count):
        item = queue.pop(lambda t, j: True, **options)  # type: ignore[arg-type]
        if item is None:
            break
        order.append(item)
    return order


def test_a_flooding_tenant_only_delays_a_quiet_one_by_one_turn() -> None:
    queue = FairQueue()
    for i in range(5000):
        queue.push("noisy", f"n{i}", 5, i)
    for i in range(10):
        queue.push("quiet", f"q{i}", 5, 5000 + i)
    first = [tenant for tenant, _ in drain(queue, 20)]
    assert first.count("quiet") == 10
    assert queue.depth("quiet") == 0
    assert queue.depth() == 4990


def test_within_a_tenant_higher_priority_then_older_first() -> None:
    queue = FairQueue()
    queue.push("acme", "low", 1, 1)
    queue.push("acme", "high-late", 9, 3)
    queue.push("acme", "high-early", 9, 2)
    assert [job for _, job in drain(queue, 3)] == ["high-early", "high-late", "low"]


def test_weights_share_turns_in_proportion() -> None:
    queue = FairQueue()
    for i in range(300):
        queue.push("gold", f"g{i}", 5, i)
        queue.push("basic", f"b{i}", 5, i)
    order = drain(queue, 300, weight=lambda t: 2.0 if t == "gold" else 1.0)
    gold = sum(1 for tenant, _ in order if tenant == "gold")
    assert 190 <= gold <= 210


def test_a_tenant_that_cannot_start_is_passed_over_without_blocking_others() -> None:
    queue = FairQueue()
    queue.push("capped", "c1", 5, 1)
    queue.push("free", "f1", 5, 2)
    assert queue.pop(lambda tenant, _: tenant != "capped") == ("free", "f1")
    assert queue.pop(lambda tenant, _: tenant != "capped") is None
    assert queue.pop(lambda tenant, _: True) == ("capped", "c1")


def test_removed_jobs_are_not_started() -> None:
    queue = FairQueue()
    queue.push("acme", "a1", 5, 1)
    queue.push("acme", "a2", 5, 2)
    queue.remove("acme", "a1")
    assert drain(queue, 5) == [("acme", "a2")]
    assert queue.depths() == {}
