"""Redis keys of every read model: the only place they are spelled.

<root>:tenant:{<id>}:config             hash  config key -> JSON value
<root>:tenant:{<id>}:meta               hash  status, plan, labels, config_version
<root>:tenant:{<id>}:own                hash  config key -> the tenant's own JSON value under a
                                              rollout's ('' for none), for held keys only
<root>:rollout:{<name>}:members         set   tenants a config rollout holds keys for
<root>:{tenants}                        set   ids of tenants that exist
<root>:{routes}                         set   services that have routing
<root>:routes:{<service>}               hash  tenant -> pinned version
<root>:routes:{<service>}:rules         hash  default, rollout_version, rollout_percent, version
<root>:routes:{<service>}:versions      hash  version -> JSON {upstream, labels}
<root>:proj:{<name>}:checkpoint         string  last applied stream sequence
<root>:proj:{<name>}:blocked            hash  subject -> seq of the parked event it waits behind
<root>:proj:{<name>}:parked             string  count of events parked so far
<root>:proj:<name>:applied:{<tag>}      string  on a Redis Cluster: the last sequence a
                                              projection applied to the keys of hash tag <tag>
<root>:proj:{<name>}:switching          string  on a Redis Cluster, while a rebuilt read model is
                                              switched in slot by slot: "<shadow root> <id>"
<root>:proj:{<name>}:switching:alive    string  the switching process's heartbeat (expires)
<root>:proj:<name>:switched:{<tag>}     string  the id of the switch that swapped tag <tag> in

The part in braces is the key's Redis Cluster hash tag: every key of one tenant (of one
service's routing, of one projection's position) lives in one hash slot, so each
atomic commit touches one slot. Every key has one, and the same key under another
root (a rebuild's shadow) has the same, so a rebuilt key can be renamed into place
within its slot. On a single Redis the braces are just characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantplane.contracts.ids import validate_name, validate_tenant_id

DEFAULT_ROOT = "tp"


@dataclass(frozen=True)
class Keys:
    """Builds the Redis keys of one installation (`root`) and read-model generation."""

    root: str = DEFAULT_ROOT

    def tenant_config(self, tenant_id: str) -> str:
        """Hash of one tenant's config: key -> JSON-encoded value."""
        return f"{self.root}:tenant:{{{validate_tenant_id(tenant_id)}}}:config"

    def tenant_meta(self, tenant_id: str) -> str:
        """Hash of one tenant's metadata: status, plan, labels, config_version."""
        return f"{self.root}:tenant:{{{validate_tenant_id(tenant_id)}}}:meta"

    def tenant_own(self, tenant_id: str) -> str:
        """Hash of the tenant's own values under the keys rollouts hold for it."""
        return f"{self.root}:tenant:{{{validate_tenant_id(tenant_id)}}}:own"

    def rollout_members(self, rollout: str) -> str:
        """Set of the tenants a config rollout holds keys for."""
        return f"{self.root}:rollout:{{{validate_name(rollout, 'rollout')}}}:members"

    def rollouts(self) -> str:
        """Pattern of every rollout's keys."""
        return f"{self.root}:rollout:*"

    def tenants(self) -> str:
        """Set of the ids of every tenant that exists (not offboarded)."""
        return f"{self.root}:{{tenants}}"

    def route_pins(self, service: str) -> str:
        """Hash of one service's pins: tenant -> version."""
        return f"{self.root}:routes:{{{validate_name(service, 'service')}}}"

    def route_rules(self, service: str) -> str:
        """Hash of one service's default, rollout_version, rollout_percent and version."""
        return f"{self.root}:routes:{{{validate_name(service, 'service')}}}:rules"

    def route_versions(self, service: str) -> str:
        """Hash of one service's live versions: version -> JSON {upstream, labels}."""
        return f"{self.root}:routes:{{{validate_name(service, 'service')}}}:versions"

    def route_services(self) -> str:
        """Set of the services that have routing."""
        return f"{self.root}:{{routes}}"

    def checkpoint(self, projection: str) -> str:
        """Last stream sequence a projection applied."""
        return f"{self.root}:proj:{{{validate_name(projection, 'projection')}}}:checkpoint"

    def blocked(self, projection: str) -> str:
        """Subjects whose events wait behind a parked event."""
        return f"{self.root}:proj:{{{validate_name(projection, 'projection')}}}:blocked"

    def parked(self, projection: str) -> str:
        """How many events a projection has parked in the dead-letter stream."""
        return f"{self.root}:proj:{{{validate_name(projection, 'projection')}}}:parked"

    def applied(self, projection: str, tag: str) -> str:
        """On a Redis Cluster, the last sequence `projection` applied to the keys of hash
        tag `tag` (in their slot, so the guard commits with what it guards)."""
        return f"{self.root}:proj:{validate_name(projection, 'projection')}:applied:{{{tag}}}"

    def redriven(self, projection: str, tag: str) -> str:
        """On a Redis Cluster, the sequences of dead letters a re-drive of `projection`
        applied to hash tag `tag` while it runs (beside the tag's `applied` guard)."""
        return f"{self.applied(projection, tag)}:redriven"

    def applied_all(self, projection: str) -> str:
        """Pattern of every `applied` guard of a projection (and its `redriven` set)."""
        return f"{self.root}:proj:{validate_name(projection, 'projection')}:applied:*"

    def switching(self, projection: str) -> str:
        """On a Redis Cluster, set while a rebuilt read model is switched in (a fence)."""
        return f"{self.root}:proj:{{{validate_name(projection, 'projection')}}}:switching"

    def switching_alive(self, projection: str) -> str:
        """The heartbeat of the process switching a rebuilt read model in."""
        return f"{self.root}:proj:{{{validate_name(projection, 'projection')}}}:switching:alive"

    def switched(self, projection: str, tag: str) -> str:
        """Which switch swapped the keys of hash tag `tag` in (kept a day after)."""
        return f"{self.root}:proj:{validate_name(projection, 'projection')}:switched:{{{tag}}}"
