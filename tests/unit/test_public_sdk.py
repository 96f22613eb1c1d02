"""The public SDK: one import surface, and the client side loads no server code."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tenantplane

SERVER_MODULES = ("faststream", "uvicorn", "sqlalchemy")


def test_every_public_name_resolves_and_is_listed() -> None:
    assert tenantplane.__all__ == sorted(tenantplane._EXPORTS)
    for name in tenantplane.__all__:
        assert getattr(tenantplane, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = tenantplane.no_such_thing


@pytest.mark.parametrize(
    "names",
    [
        "Domain, DomainEvent, DomainStore, Aggregates, Settings, connect_nats",
        "AsyncConfigClient, ConfigClient, Resolver, JobClient",
        "TenantplaneError, ConcurrencyConflict, AggregateBlocked",
    ],
)
def test_the_client_side_loads_no_server_code(names: str) -> None:
    # Given a fresh interpreter that uses only client-side names
    code = (
        f"import sys, tenantplane as tp\n"
        f"[getattr(tp, n.strip()) for n in {names!r}.split(',')]\n"
        f"print(','.join(m for m in {SERVER_MODULES!r} if m in sys.modules))"
    )
    # When it imports them
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    # Then no server framework was loaded
    assert loaded == ""
