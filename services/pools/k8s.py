"""The Kubernetes backend: dedicated pools as worker Deployments, applied server-side.

Each dedicated pool's Deployment is made from a template, the one the Helm
chart renders for its own pools (`<release>-pool-template` ConfigMap), so the
chart's pools and the reconciler's are the same shape. The reconciler owns only
the Deployments labelled `app.kubernetes.io/managed-by: tenantplane-reconciler`
of its release; it never touches the chart's pools.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import structlog
import yaml

from tenantplane.services.pools.desired import Plan, PoolSpec

log = structlog.get_logger(__name__)

MANAGER = "tenantplane-reconciler"
POOL_LABEL = "tenantplane.io/pool"
MANAGED_BY = "app.kubernetes.io/managed-by"
PLACEHOLDER = "POOL"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class PoolTemplate:
    """A worker Deployment with `POOL` where the pool's name goes."""

    def __init__(self, deployment: dict[str, Any]) -> None:
        name = deployment["metadata"]["name"]
        if deployment.get("kind") != "Deployment" or not name.endswith(PLACEHOLDER):
            raise ValueError(f"a pool template is a Deployment named <prefix>{PLACEHOLDER}")
        self.deployment = deployment
        self.prefix = name.removesuffix(PLACEHOLDER)
        self.instance = deployment["metadata"]["labels"].get("app.kubernetes.io/instance", "")

    @classmethod
    def load(cls, path: Path) -> PoolTemplate:
        """The template in a YAML file."""
        loaded = yaml.safe_load(path.read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: not a Kubernetes object")
        return cls(loaded)

    def manifest(self, spec: PoolSpec) -> dict[str, Any]:
        """The Deployment of pool `spec`."""
        d: dict[str, Any] = copy.deepcopy(self.deployment)
        d["metadata"]["name"] = self.prefix + spec.name
        for labels in (
            d["metadata"]["labels"],
            d["spec"]["selector"]["matchLabels"],
            d["spec"]["template"]["metadata"]["labels"],
        ):
            labels[POOL_LABEL] = spec.name
        d["metadata"]["labels"][MANAGED_BY] = MANAGER
        d["spec"]["replicas"] = spec.replicas
        container = d["spec"]["template"]["spec"]["containers"][0]
        container["args"] = _with_option(
            _with_option(container["args"], "--pool", spec.name), "--threads", str(spec.threads)
        )
        # The pool's own NATS user, its inbox and its password's key (see the chart).
        for variable in container.get("env", []):
            if "value" in variable:
                variable["value"] = _for_pool(variable["value"], spec.name)
            secret = variable.get("valueFrom", {}).get("secretKeyRef")
            if secret is not None:
                secret["key"] = _for_pool(secret["key"], spec.name)
        return d

    def selector(self) -> str:
        """Label selector of the Deployments this reconciler manages."""
        return f"{MANAGED_BY}={MANAGER},app.kubernetes.io/instance={self.instance},{POOL_LABEL}"


def _for_pool(text: str, pool: str) -> str:
    """`text` with the template's pool role (`pool-POOL`) made pool `pool`'s."""
    return text.replace(f"pool-{PLACEHOLDER}", f"pool-{pool}")


def spec_of(deployment: dict[str, Any]) -> PoolSpec:
    """The pool a Deployment (as the API returns it) runs."""
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return PoolSpec(
        name=deployment["metadata"]["labels"][POOL_LABEL],
        replicas=int(deployment["spec"].get("replicas", 1)),
        threads=int(args[args.index("--threads") + 1]),
    )


def _with_option(args: list[str], option: str, value: str) -> list[str]:
    if option in args:
        i = args.index(option)
        return [*args[: i + 1], value, *args[i + 2 :]]
    return [*args, option, value]


class KubernetesPools:
    """Dedicated pools as Deployments in one namespace (blocking client calls run in threads)."""

    def __init__(self, template: PoolTemplate, namespace: str, api: Any = None) -> None:
        from kubernetes import client, config

        if api is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api = client.ApiClient()
        self.template, self.namespace = template, namespace
        self.api = client.AppsV1Api(api)
        self.client = api

    async def actual(self) -> dict[str, PoolSpec]:
        """The dedicated pools' Deployments that exist now."""
        found = await asyncio.to_thread(
            self.api.list_namespaced_deployment,
            self.namespace,
            label_selector=self.template.selector(),
        )
        specs = [spec_of(self.client.sanitize_for_serialization(d)) for d in found.items]
        return {spec.name: spec for spec in specs}

    async def apply(self, plan: Plan) -> None:
        """Apply created and changed pools server-side; delete the others."""
        for spec in [*plan.create, *plan.update]:
            manifest = self.template.manifest(spec)
            await asyncio.to_thread(
                self.api.patch_namespaced_deployment,
                manifest["metadata"]["name"],
                self.namespace,
                manifest,
                field_manager=MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
            log.info("pool.applied", pool=spec.name, replicas=spec.replicas)
        for name in plan.delete:
            await asyncio.to_thread(
                self.api.delete_namespaced_deployment, self.template.prefix + name, self.namespace
            )
            log.info("pool.deleted", pool=name)

    async def close(self) -> None:
        """Release the API client."""
        await asyncio.to_thread(self.client.close)


def current_namespace() -> str:
    """The namespace this pod runs in, else `default`."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        return "default"
