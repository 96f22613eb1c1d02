"""Prometheus metrics of a tenantplane process.

Two kinds, chosen by cost:

- Histograms and counters observed where the event happens (command latency,
  end-to-end apply latency, job outcomes), on the process's default registry.
- Figures a component already keeps in memory (a projector's counts and lag, a
  pool's queues) are read at scrape time through `LIVE`: nothing is paid per
  event, and the figures cannot drift from what the component acts on.

Every metric is declared in this module, so its name, help and labels are
spelled once; `docs/operations.md` lists them with the alerts they support.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import count

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip

APPLY_LATENCY = Histogram(
    "tenantplane_projection_apply_latency_seconds",
    "Event appended to the log -> its read-model write committed (live events only)",
    ["projection"],
    buckets=_LATENCY_BUCKETS,
)
COMMAND_DURATION = Histogram(
    "tenantplane_command_duration_seconds",
    "Time a service took to handle a command, by outcome (ok or the error code)",
    ["command", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
JOBS_FINISHED = Counter(
    "tenantplane_jobs_finished",
    "Job attempts that ended, by pool, kind and outcome",
    ["pool", "kind", "outcome"],
)
LEASES_EXPIRED = Counter(
    "tenantplane_job_leases_expired",
    "Running attempts failed worker_lost: their worker stopped renewing their lease, by pool",
    ["pool"],
)
ATTEMPTS_REDISPATCHED = Counter(
    "tenantplane_job_attempts_redispatched",
    "Scheduled attempts queued again because their queue message was lost, by pool",
    ["pool"],
)
JOB_WAIT = Histogram(
    "tenantplane_job_wait_seconds",
    "Time from a job being due (asked for, or its not_before) to its first attempt's start",
    ["pool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
JOB_DURATION = Histogram(
    "tenantplane_job_duration_seconds",
    "Run time of job attempts, by pool and kind",
    ["pool", "kind"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600),
)


@dataclass(frozen=True)
class Family:
    """A metric read at scrape time."""

    kind: str  # "gauge" or "counter"
    help: str
    labels: tuple[str, ...]


FAMILIES: dict[str, Family] = {
    "tenantplane_projector_events": Family(
        "counter", "Events a projector handled, by outcome (applied or parked)",
        ("projection", "outcome"),
    ),
    "tenantplane_dead_letters": Family(
        "counter", "Events a projector parked in the dead-letter stream", ("projection",)
    ),
    "tenantplane_projection_lag_events": Family(
        "gauge", "Events the projection has still to apply", ("projection",)
    ),
    "tenantplane_projection_checkpoint": Family(
        "gauge", "Stream sequence of the last event the projection applied", ("projection",)
    ),
    "tenantplane_projection_last_apply_timestamp_seconds": Family(
        "gauge", "Unix time of the projection's last committed batch", ("projection",)
    ),
    "tenantplane_projection_blocked_subjects": Family(
        "gauge", "Aggregates waiting behind a parked event", ("projection",)
    ),
    "tenantplane_projector_restarts": Family(
        "counter", "Times a projector resubscribed after an error", ("projection",)
    ),
    "tenantplane_projection_losses": Family(
        "counter", "Times a projector found its read model lost (and rebuilt it)",
        ("projection",),
    ),
    "tenantplane_projector_standby": Family(
        "gauge", "1 while another replica holds the projection's lease (this one waits)",
        ("projection",),
    ),
    "tenantplane_loop_restarts": Family(
        "counter", "Times the supervisor restarted a loop after it failed", ("loop",)
    ),
    "tenantplane_loop_up": Family(
        "gauge", "1 while a supervised loop does its work, 0 while it is down or retrying",
        ("loop",),
    ),
    "tenantplane_pool_capacity_jobs": Family(
        "gauge", "Jobs a pool may have in flight at once", ("pool",)
    ),
    "tenantplane_pool_in_flight_jobs": Family(
        "gauge", "Jobs dispatched to a pool and not finished", ("pool",)
    ),
    "tenantplane_pool_waiting_jobs": Family(
        "gauge", "Admitted jobs waiting for a pool's capacity", ("pool",)
    ),
    "tenantplane_tenant_waiting_jobs": Family(
        "gauge", "Admitted jobs waiting, per tenant (only tenants with waiting jobs)",
        ("pool", "tenant"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One value of a family in `FAMILIES`, with its label values in order."""

    family: str
    labels: tuple[str, ...]
    value: float


Source = Callable[[], Iterable[Sample]]


class Live(Collector):
    """Collects the samples of registered sources, grouped into their families."""

    def __init__(self) -> None:
        self._sources: dict[int, Source] = {}
        self._ids = count()

    def add(self, source: Source) -> Callable[[], None]:
        """Read `source` at every scrape; returns the function that stops it."""
        key = next(self._ids)
        self._sources[key] = source
        return lambda: self._sources.pop(key, None) and None

    def collect(self) -> Iterator[Metric]:
        """The families that have samples now."""
        found: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for source in list(self._sources.values()):
            for sample in source():
                family = found.get(sample.family)
                if family is None:
                    found[sample.family] = family = _family(sample.family)
                family.add_metric(list(sample.labels), sample.value)
        yield from found.values()


def _family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    spec = FAMILIES[name]
    labels = list(spec.labels)
    if spec.kind == "counter":
        return CounterMetricFamily(name, spec.help, labels=labels)
    return GaugeMetricFamily(name, spec.help, labels=labels)


LIVE = Live()
REGISTRY.register(LIVE)
