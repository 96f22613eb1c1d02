"""The operations endpoint in tests: serve it, scrape it, read readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantplane.services.runtime.ops import ops_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def ops_url() -> AsyncIterator[str]:
    """/healthz, /readyz and /metrics of this process on a free port."""
    async with ops_server("127.0.0.1", 0) as url:
        yield url


async def scrape(url: str) -> Samples:
    """Every metric sample the endpoint serves now."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{url}/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def readyz(url: str) -> tuple[int, dict[str, Any]]:
    """The readiness status code and report."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{url}/readyz")
    report: dict[str, Any] = response.json()
    return response.status_code, report
