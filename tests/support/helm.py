"""Render the Helm chart in-process (Helm's own Go engine, without a helm binary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "tenantplane"
EXAMPLES = ROOT / "deploy" / "helm" / "examples"


def render(values: dict[str, Any] | None = None, release: str = "tp") -> list[dict[str, Any]]:
    """Every object the chart renders for `values`, in template order."""
    chart = helm_python.Chart.load(CHART)
    rendered = chart.render(values or {}, name=release, namespace="tenantplane", is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def example(name: str) -> dict[str, Any]:
    """A values file from deploy/helm/examples."""
    values: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return values


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Objects of one kind by name."""
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
