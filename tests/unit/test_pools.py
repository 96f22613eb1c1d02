"""Desired dedicated pools and the plan that reaches them (pure logic)."""

from __future__ import annotations

from tenantplane.services.pools.desired import Plan, PoolSpec, dedicated_pools, plan

SHAPE = PoolSpec("", replicas=1, threads=4)


def test_only_pools_outside_the_installations_get_a_dedicated_pool() -> None:
    assigned = {
        "acme": "dedicated-acme",
        "beta": "default",
        "gamma": "dedicated-acme",
        "delta": "x",
    }
    desired = dedicated_pools(assigned, static={"default"}, template=SHAPE)
    assert desired == {
        "dedicated-acme": PoolSpec("dedicated-acme", 1, 4),
        "x": PoolSpec("x", 1, 4),
    }


def test_plan_creates_missing_updates_changed_and_deletes_unused() -> None:
    desired = {"a": PoolSpec("a", 1, 4), "b": PoolSpec("b", 2, 4)}
    actual = {"b": PoolSpec("b", 1, 4), "c": PoolSpec("c", 1, 4)}
    assert plan(desired, actual) == Plan(
        create=(PoolSpec("a", 1, 4),), update=(PoolSpec("b", 2, 4),), delete=("c",)
    )


def test_a_converged_backend_has_nothing_to_do() -> None:
    desired = {"a": PoolSpec("a", 1, 4)}
    assert plan(desired, dict(desired)).empty
    assert not plan(desired, {}).empty
    assert plan({}, {"a": PoolSpec("a", 1, 4)}).summary() == {
        "create": [], "update": [], "delete": ["a"]
    }  # fmt: skip
