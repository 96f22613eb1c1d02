"""The Helm chart: rendered by Helm's engine, every object valid against the Kubernetes schema."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from tenantplane.services.pools.desired import PoolSpec
from tenantplane.services.pools.k8s import MANAGED_BY, MANAGER, POOL_LABEL, PoolTemplate, spec_of
from tests.support.helm import CHART, by_kind, example, render

KUBERNETES = "1.33.0"
# Custom resources have no schema in kubernetes-validate; their shape is checked by hand.
CUSTOM = {"ServiceMonitor"}


def validate(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["kind"] not in CUSTOM:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def test_default_values_render_valid_objects() -> None:
    objects = render()
    validate(objects)
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {
        "tp-tenantplane-config", "tp-tenantplane-router", "tp-tenantplane-scheduler",
        "tp-tenantplane-pool-default", "tp-tenantplane-reconciler",
    }  # fmt: skip
    assert set(by_kind(objects, "PodDisruptionBudget")) == {
        "tp-tenantplane-config", "tp-tenantplane-router", "tp-tenantplane-scheduler",
    }  # fmt: skip
    config = container(deployments["tp-tenantplane-config"])
    assert config["args"] == ["serve", "config"]
    assert config["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert config["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Only the config service holds the secrets master keys.
    mounts = {
        name: {m["name"] for m in container(d).get("volumeMounts", [])}
        for name, d in deployments.items()
    }
    assert [n for n, m in mounts.items() if "master-keys" in m] == ["tp-tenantplane-config"]
    # No master key is ever rendered from defaults: the operator creates that Secret.
    assert "tp-tenantplane-master-keys" not in by_kind(objects, "Secret")


def test_three_pools_render_one_deployment_each_and_the_scheduler_knows_them() -> None:
    objects = render(example("three-pools.yaml"))
    validate(objects)
    pools = {
        d["metadata"]["labels"][POOL_LABEL]: d
        for d in by_kind(objects, "Deployment").values()
        if POOL_LABEL in d["metadata"]["labels"]
    }
    assert set(pools) == {"default", "reports", "enterprise"}
    assert spec_of(pools["reports"]) == PoolSpec("reports", replicas=2, threads=2)
    assert "--kinds" in container(pools["enterprise"])["args"]
    settings = by_kind(objects, "ConfigMap")["tp-tenantplane-settings"]["data"]
    assert json.loads(settings["TENANTPLANE_POOLS"]) == {
        "default": 24,
        "reports": 4,
        "enterprise": 8,
    }
    assert settings["TENANTPLANE_NATS_CREDS_FILE"].endswith("user.creds")
    # The ServiceMonitor scrapes the metrics Service's port.
    monitor = by_kind(objects, "ServiceMonitor")["tp-tenantplane"]
    service = by_kind(objects, "Service")["tp-tenantplane-metrics"]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    # Existing secrets are used, not made.
    assert by_kind(objects, "Secret") == {}


def test_a_broken_object_fails_validation() -> None:
    """The validator is not a rubber stamp: a wrong field type is caught."""
    deployment = by_kind(render(), "Deployment")["tp-tenantplane-router"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_the_chart_lints_clean() -> None:
    report = helm_python.lint(CHART, strict=True)
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_dedicated_pool_deployments_come_from_the_charts_template() -> None:
    objects = render()
    template_map = by_kind(objects, "ConfigMap")["tp-tenantplane-pool-template"]
    template = PoolTemplate(yaml.safe_load(template_map["data"]["deployment.yaml"]))
    spec = PoolSpec("dedicated-acme", replicas=2, threads=6)
    manifest = template.manifest(spec)
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    assert manifest["metadata"]["name"] == "tp-tenantplane-pool-dedicated-acme"
    assert manifest["metadata"]["labels"][MANAGED_BY] == MANAGER
    assert spec_of(manifest) == spec
    args = container(manifest)["args"]
    assert args[args.index("--pool") + 1] == "dedicated-acme"
    assert "POOL" not in json.dumps(manifest)
    # The reconciler lists only its own Deployments of this release.
    assert template.selector() == (
        f"{MANAGED_BY}={MANAGER},app.kubernetes.io/instance=tp,{POOL_LABEL}"
    )
    # Its Deployment can manage Deployments, and nothing else.
    role = by_kind(objects, "Role")["tp-tenantplane-reconciler"]
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"],
         "verbs": ["get", "list", "watch", "create", "patch", "delete"]}
    ]  # fmt: skip


def test_with_a_users_secret_each_container_connects_as_its_own_role() -> None:
    objects = render({"nats": {"usersSecret": "tp-nats-users"}})
    validate(objects)
    deployments = by_kind(objects, "Deployment")
    template_map = by_kind(objects, "ConfigMap")["tp-tenantplane-pool-template"]
    dedicated = PoolTemplate(yaml.safe_load(template_map["data"]["deployment.yaml"])).manifest(
        PoolSpec("gold", replicas=1, threads=4)
    )
    kubernetes_validate.validate(dedicated, KUBERNETES, strict=True)
    expected = {
        "tp-tenantplane-config": "config",
        "tp-tenantplane-router": "router",
        "tp-tenantplane-scheduler": "scheduler",
        "tp-tenantplane-reconciler": "reconciler",
        "tp-tenantplane-pool-default": "pool-default",
        "tp-tenantplane-pool-gold": "pool-gold",
    }
    deployments["tp-tenantplane-pool-gold"] = dedicated
    for name, role in expected.items():
        env = {e["name"]: e for e in container(deployments[name])["env"]}
        assert env["TENANTPLANE_NATS_USER"]["value"] == role, name
        assert env["TENANTPLANE_NATS_INBOX_PREFIX"]["value"] == f"_INBOX_{role}", name
        password = env["TENANTPLANE_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": "tp-nats-users", "key": role}, name
    # Without the secret, no container names a user
    plain = by_kind(render(), "Deployment")["tp-tenantplane-config"]
    assert "TENANTPLANE_NATS_USER" not in json.dumps(plain)


def test_missing_required_values_fail_with_the_key_named() -> None:
    with pytest.raises(helm_python.HelmError, match=r"nats\.url is required"):
        render({"nats": {"url": ""}})


def test_a_split_scheduler_runs_its_loop_and_its_job_history_as_two_deployments() -> None:
    deployments = by_kind(render({"services": {"scheduler": {"split": True}}}), "Deployment")
    for part in ("commands", "projections"):
        args = container(deployments[f"tp-tenantplane-scheduler-{part}"])["args"]
        assert args == ["serve", "scheduler", "--only", part]
    assert "tp-tenantplane-scheduler" not in deployments


def test_split_config_runs_commands_and_projections_as_two_deployments() -> None:
    objects = render({"services": {"config": {"split": True}}})
    validate(objects)
    deployments = by_kind(objects, "Deployment")
    commands = container(deployments["tp-tenantplane-config-commands"])
    projections = container(deployments["tp-tenantplane-config-projections"])
    assert commands["args"] == ["serve", "config", "--only", "commands"]
    assert projections["args"] == ["serve", "config", "--only", "projections"]
    assert "tp-tenantplane-config" not in deployments
    # Only the part that handles commands (secrets) holds the master keys.
    mounts = {m["name"] for m in commands.get("volumeMounts", [])}
    assert "master-keys" in mounts
    assert "master-keys" not in {m["name"] for m in projections.get("volumeMounts", [])}
    assert {"tp-tenantplane-config-commands", "tp-tenantplane-config-projections"} <= set(
        by_kind(objects, "PodDisruptionBudget")
    )
