"""`tenantctl contracts export`: every contract, the config schema's keys, registered domains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from examples.billing.events import BILLING
from tenantplane.contracts.ids import AGGREGATE_ID_PATTERN
from tenantplane.contracts.schema import DIALECT
from tenantplane.services.runtime.domain_refs import load_domain
from tenantplane.services.runtime.settings import Settings

EXIT_USAGE = 2
REPO = Path(__file__).resolve().parents[2]


def tenantctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantplane.services.cli", *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_export_writes_the_domains_of_the_setting_and_the_flag(tmp_path: Path) -> None:
    # Given billing registered by the setting, the test ledger by the flag, a config schema
    config = tmp_path / "config-schema.json"
    config.write_text(json.dumps({"keys": {"seats": {"type": "int", "minimum": 1}}}))
    env = {
        "TENANTPLANE_DOMAINS": "examples.billing.events:BILLING",
        "TENANTPLANE_CONFIG_SCHEMA_FILE": str(config),
    }
    # When the contracts are exported
    out = tmp_path / "schemas"
    result = tenantctl(
        "contracts", "export", str(out), "--domain", "tests.support.domains:LEDGER", env=env
    )
    # Then both domains' events are written under domains/<domain>/
    assert result.returncode == 0, result.stderr
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.json")}
    assert {
        "domains/billing/events/billing.invoice_issued.v1.json",
        "domains/ledger/events/ledger.credited.v2.json",
        "events/tenant.registered.v1.json",
        "commands/config.config.set.json",
        "command-reply.json",
        "commands/config.secret.sealing_key.json",
    } <= written
    # And every file names its JSON Schema dialect
    for path in out.rglob("*.json"):
        assert json.loads(path.read_text()).get("$schema") == DIALECT, path
    issued = json.loads((out / "domains/billing/events/billing.invoice_issued.v1.json").read_text())
    data = issued["$defs"]["InvoiceIssued"]["properties"]
    assert data["invoice_id"]["pattern"] == AGGREGATE_ID_PATTERN
    # And config.set says what the config schema lets a key hold
    set_config = json.loads((out / "commands/config.config.set.json").read_text())
    seats = set_config["properties"]["values"]["properties"]["seats"]["allOf"][1]
    assert seats["type"] == "integer"
    assert seats["minimum"] == 1


def test_a_bad_domain_reference_is_a_one_line_usage_error(tmp_path: Path) -> None:
    # When a domain reference names nothing importable
    result = tenantctl(
        "contracts", "export", str(tmp_path), "--domain", "nope.nothing:BILLING", env={}
    )
    # Then tenantctl exits 2 with one line naming it, and writes nothing
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: domain 'nope.nothing:BILLING': cannot import nope.nothing: No module named 'nope'"
    ]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("examples.billing.events", "expected module:ATTR"),
        ("examples.billing.events:NOPE", "examples.billing.events has no NOPE"),
        ("examples.billing.events:InvoicePaid", "is not a Domain"),
        (":BILLING", "expected module:ATTR"),
    ],
)
def test_a_reference_that_is_not_a_domain_is_refused_naming_it(reference: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        load_domain(reference)


def test_a_reference_loads_its_domain() -> None:
    assert load_domain("examples.billing.events:BILLING") is BILLING


def test_domains_setting_is_comma_separated_and_round_trips_to_a_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given TENANTPLANE_DOMAINS with two references
    monkeypatch.setenv("TENANTPLANE_DOMAINS", "billing.events:BILLING, orders.events:ORDERS")
    # When the settings are read
    settings = Settings()
    # Then each reference is one entry, and a child process reads the same
    assert settings.domains == ("billing.events:BILLING", "orders.events:ORDERS")
    assert settings.to_env()["TENANTPLANE_DOMAINS"] == "billing.events:BILLING,orders.events:ORDERS"
