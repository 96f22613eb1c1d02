"""The chart's alert rules and dashboard: valid PromQL over metrics the services export,
and a runbook for every alert."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_parser
import pytest
from prometheus_client import Counter, Histogram

from tenantplane.services.runtime import metrics
from tests.support.helm import by_kind, render

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = "1.33.0"
METRIC = re.compile(r"\btenantplane_[a-z_]+\b")


def exported() -> set[str]:
    """Every series name the services' /metrics can show."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, Histogram):
            names |= {f"{value._name}_bucket", f"{value._name}_sum", f"{value._name}_count"}
        elif isinstance(value, Counter):
            names.add(f"{value._name}_total")
    for name, family in metrics.FAMILIES.items():
        names.add(f"{name}_total" if family.kind == "counter" else name)
    return names


def monitoring() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    objects = render({"alerts": {"enabled": True}, "dashboards": {"enabled": True}})
    rules = by_kind(objects, "PrometheusRule")["tp-tenantplane"]["spec"]["groups"][0]["rules"]
    config_map = by_kind(objects, "ConfigMap")["tp-tenantplane-dashboards"]
    kubernetes_validate.validate(config_map, KUBERNETES, strict=True)
    return rules, json.loads(config_map["data"]["tenantplane.json"])


def check_expression(expr: str) -> None:
    promql_parser.parse(expr)  # raises on anything Prometheus would refuse to load
    unknown = set(METRIC.findall(expr)) - exported()
    assert not unknown, f"{expr}: no service exports {sorted(unknown)}"


def test_every_alert_is_valid_promql_over_exported_metrics_with_a_runbook() -> None:
    rules, _ = monitoring()
    runbooks = (ROOT / "docs" / "operations.md").read_text().split("## Alerts and runbooks")[1]
    assert len(rules) == 5
    for rule in rules:
        check_expression(rule["expr"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["runbook_url"].endswith("operations.md#alerts-and-runbooks")
        assert re.fullmatch(r"\d+m", rule.get("for", "0m"))
        assert f"**{rule['alert']}**" in runbooks, f"{rule['alert']} has no runbook row"


def test_every_dashboard_panel_queries_exported_metrics() -> None:
    _, dashboard = monitoring()
    targets = [t for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(targets) >= 10
    for target in targets:
        check_expression(target["expr"])


def test_a_broken_expression_or_an_unknown_metric_is_caught() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        check_expression("sum(rate(tenantplane_loop_up[5m])")
    with pytest.raises(AssertionError, match="tenantplane_no_such_metric"):
        check_expression("tenantplane_no_such_metric > 1")


def test_monitoring_is_off_by_default() -> None:
    objects = render()
    assert "PrometheusRule" not in {o["kind"] for o in objects}
    assert "tp-tenantplane-dashboards" not in by_kind(objects, "ConfigMap")
