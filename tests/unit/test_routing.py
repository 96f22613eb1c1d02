"""Routing tables: sticky buckets and resolution order."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from tenantplane.services.router.table import NoRoute, RoutingTable, VersionInfo, bucket

TENANTS = [f"tenant-{i}" for i in range(1000)]
VERSIONS = MappingProxyType({"v1": VersionInfo("http://v1"), "v2": VersionInfo("http://v2")})


def table(**rules: object) -> RoutingTable:
    return RoutingTable("billing", versions=VERSIONS, **rules)  # type: ignore[arg-type]


def on_v2(routing: RoutingTable) -> set[str]:
    return {t for t in TENANTS if routing.resolve(t).version == "v2"}


def test_buckets_are_stable_and_spread_evenly() -> None:
    assert bucket("billing", "acme") == bucket("billing", "acme")
    assert bucket("billing", "acme") != bucket("search", "acme")
    below_half = sum(1 for t in TENANTS if bucket("billing", t) < 50)
    assert 450 <= below_half <= 550


def test_raising_a_rollout_only_adds_tenants() -> None:
    at_50 = on_v2(table(default="v1", rollout=("v2", 50.0)))
    at_70 = on_v2(table(default="v1", rollout=("v2", 70.0)))
    assert 450 <= len(at_50) <= 550
    assert at_50 < at_70
    assert 650 <= len(at_70) <= 750


def test_a_pin_wins_over_rollout_and_default() -> None:
    routing = table(default="v1", rollout=("v2", 100.0), pins=MappingProxyType({"acme": "v1"}))
    assert (routing.resolve("acme").version, routing.resolve("acme").via) == ("v1", "pin")
    assert (routing.resolve("beta").version, routing.resolve("beta").via) == ("v2", "rollout")
    assert routing.resolve("beta").upstream == "http://v2"


def test_no_default_and_no_match_is_a_typed_error_not_any_instance() -> None:
    with pytest.raises(NoRoute, match="no pin, rollout or default"):
        table(rollout=("v2", 0.0001)).resolve("acme")


def test_summary_counts_where_tenants_land() -> None:
    routing = table(default="v1", pins=MappingProxyType({"acme": "v2"}))
    rows = {r["version"]: r for r in routing.summary(["acme", "beta", "gamma"])}
    assert (rows["v1"]["tenants"], rows["v1"]["role"]) == (2, "default")
    assert (rows["v2"]["tenants"], rows["v2"]["pinned"]) == (1, 1)
