"""Every event and command of the control plane: the registry services decode with.

Its own module so that importing one contract (an error, an id) does not load
them all; `tenantplane.contracts` re-exports `EVENTS` and `COMMANDS` from here.
"""

from __future__ import annotations

from tenantplane.contracts import config, discards, jobs, rollouts, routing, schedules, tenants
from tenantplane.contracts.commands import Command
from tenantplane.contracts.registry import EventRegistry

EVENTS = EventRegistry.of(
    [
        *tenants.EVENTS,
        *config.EVENTS,
        *rollouts.EVENTS,
        *routing.EVENTS,
        *jobs.EVENTS,
        *schedules.EVENTS,
        *discards.EVENTS,
    ]
)
COMMANDS: tuple[type[Command], ...] = (
    *tenants.COMMANDS,
    *config.COMMANDS,
    config.ShowSealingKey,
    *rollouts.COMMANDS,
    *routing.COMMANDS,
    *jobs.COMMANDS,
    *schedules.COMMANDS,
    *discards.COMMANDS,
)
