"""Routing tables: sticky buckets and resolution order."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from tenantplane.contracts.cohorts import point
from tenantplane.services.router.table import NoRoute, RouteRollout, RoutingTable, VersionInfo

TENANTS = [f"tenant-{i}" for i in range(1000)]
VERSIONS = MappingProxyType({"v1": VersionInfo("http://v1"), "v2": VersionInfo("http://v2")})


def table(**rules: object) -> RoutingTable:
    return RoutingTable("billing", versions=VERSIONS, **rules)  # type: ignore[arg-type]


def on_v2(routing: RoutingTable) -> set[str]:
    return {t for t in TENANTS if routing.resolve(t).version == "v2"}


def test_cohort_points_are_stable_and_spread_evenly() -> None:
    assert point("acme", "billing") == point("acme", "billing")
    assert point("acme", "billing") != point("acme", "search")
    below_half = sum(1 for t in TENANTS if point(t, "billing") < 50)
    assert 450 <= below_half <= 550


def test_the_cohort_hash_is_the_documented_one() -> None:
    # SHA-256 of "billing/acme": its first 4 bytes, big-endian, scaled to [0, 100). Other
    # languages compute the same point (docs/routing.md); so did rollouts before cohorts.
    import hashlib

    digest = hashlib.sha256(b"billing/acme").digest()
    assert point("acme", "billing") == int.from_bytes(digest[:4], "big") / 2**32 * 100


def test_a_service_rollout_and_a_named_cohort_pick_their_own_tenants() -> None:
    own = on_v2(table(default="v1", rollout=RouteRollout("v2", 30.0, "billing")))
    shared = on_v2(table(default="v1", rollout=RouteRollout("v2", 30.0, "release-42")))
    assert own != shared
    assert shared == {t for t in TENANTS if point(t, "release-42") < 30.0}


def test_raising_a_rollout_only_adds_tenants() -> None:
    at_50 = on_v2(table(default="v1", rollout=RouteRollout("v2", 50.0, "billing")))
    at_70 = on_v2(table(default="v1", rollout=RouteRollout("v2", 70.0, "billing")))
    assert 450 <= len(at_50) <= 550
    assert at_50 < at_70
    assert 650 <= len(at_70) <= 750


def test_a_pin_wins_over_rollout_and_default() -> None:
    routing = table(
        default="v1",
        rollout=RouteRollout("v2", 100.0, "billing"),
        pins=MappingProxyType({"acme": "v1"}),
    )
    assert (routing.resolve("acme").version, routing.resolve("acme").via) == ("v1", "pin")
    assert (routing.resolve("beta").version, routing.resolve("beta").via) == ("v2", "rollout")
    assert routing.resolve("beta").upstream == "http://v2"


def test_no_default_and_no_match_is_a_typed_error_not_any_instance() -> None:
    with pytest.raises(NoRoute, match="no pin, rollout or default"):
        table(rollout=RouteRollout("v2", 0.0001, "billing")).resolve("acme")


def test_summary_counts_where_tenants_land() -> None:
    routing = table(default="v1", pins=MappingProxyType({"acme": "v2"}))
    rows = {r["version"]: r for r in routing.summary(["acme", "beta", "gamma"])}
    assert (rows["v1"]["tenants"], rows["v1"]["role"]) == (2, "default")
    assert (rows["v2"]["tenants"], rows["v2"]["pinned"]) == (1, 1)
