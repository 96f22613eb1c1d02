"""GitOps files: parsing, merging, validation with file and line, and planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantplane.services.config.gitops import ApplyError, Current, Desired, load, plan
from tenantplane.services.config.schema import DEFAULT_SCHEMA


def write(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_common_tenant_and_environment_layers_merge_in_order(tmp_path: Path) -> None:
    write(tmp_path, "_common.yaml", "rate_limit: 10\nfeatures: {beta: false}\n")
    write(
        tmp_path, "acme.properties", "_tenant.plan=gold\n_tenant.labels.region=eu\nrate_limit=20\n"
    )
    write(tmp_path, "beta.json", '{"_tenant": {"display_name": "Beta Co"}, "jobs.pool": "shared"}')
    write(tmp_path, "prod/_common.yml", "features: {beta: true}\n")
    write(tmp_path, "prod/acme.yaml", "rate_limit: 30\n")
    acme, beta = load(tmp_path, DEFAULT_SCHEMA, env="prod")
    assert (acme.tenant_id, acme.plan, acme.labels) == ("acme", "gold", {"region": "eu"})
    assert acme.config == {"rate_limit": 30, "features": {"beta": True}}
    assert (beta.display_name, beta.plan) == ("Beta Co", "standard")
    assert beta.config == {"rate_limit": 10, "features": {"beta": True}, "jobs.pool": "shared"}


def test_every_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", "rate_limit: 5\n")
    write(tmp_path, "bad-yaml.yaml", "rate_limit: 5\nfeatures: [unclosed\n")
    write(tmp_path, "bad-json.json", '{\n  "rate_limit": 5,\n}\n')
    write(tmp_path, "bad-props.properties", "rate_limit=5\nno equals sign\n")
    write(tmp_path, "negative.yaml", "features: {}\nrate_limit: -3\n")
    write(tmp_path, "Not_A_Tenant.yaml", "rate_limit: 1\n")
    with pytest.raises(ApplyError) as raised:
        load(tmp_path, DEFAULT_SCHEMA)
    problems = "\n".join(raised.value.problems)
    assert f"{tmp_path}/bad-yaml.yaml:3: invalid YAML" in problems
    assert f"{tmp_path}/bad-json.json:3: invalid JSON" in problems
    assert f"{tmp_path}/bad-props.properties:2: expected key=value" in problems
    assert f"{tmp_path}/negative.yaml:2: rate_limit: -3 is below the minimum 0" in problems
    assert "Not_A_Tenant.yaml: file name is not a tenant id" in problems
    assert "nothing applied" in str(raised.value)


def test_values_json_cannot_carry_are_problems_with_file_and_line(tmp_path: Path) -> None:
    # Given YAML that reads as a date and as NaN
    write(tmp_path, "acme.yaml", "rate_limit: 5\nstarts: 2026-01-01\nratio: .nan\n")
    # When the directory is loaded
    with pytest.raises(ApplyError) as raised:
        load(tmp_path, DEFAULT_SCHEMA)
    # Then each is a problem at its line, never a value stored as something else
    problems = "\n".join(raised.value.problems)
    assert f"{tmp_path}/acme.yaml:2: starts: input was not a valid JSON value" in problems
    assert f"{tmp_path}/acme.yaml:3: ratio: nan is not a JSON number" in problems


def test_plan_creates_sets_changes_and_prunes_only_differences() -> None:
    desired = load_one("acme", {"a": 1, "b": 2})
    assert plan(desired, {"acme": Current("standard", {"a": 1, "b": 2})}, prune=True)[0].empty
    step = plan(desired, {"acme": Current("gold", {"a": 9, "c": 3})}, prune=True)[0]
    assert (step.plan, step.set, step.unset) == ("standard", {"a": 1, "b": 2}, ["c"])
    kept = plan(desired, {"acme": Current("standard", {"c": 3})}, prune=False)[0]
    assert kept.unset == []
    created = plan(desired, {"acme": None}, prune=True)[0]
    assert created.create is not None
    assert created.set == {"a": 1, "b": 2}


def load_one(tenant: str, config: dict[str, int]) -> list[Desired]:
    return [Desired(tenant, tenant, "standard", {}, dict(config))]
