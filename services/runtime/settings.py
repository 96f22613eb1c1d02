"""The one typed settings object of every tenantplane process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tenantplane.contracts.keys import Keys
from tenantplane.contracts.subjects import Subjects

DEFAULT_DATA_DIR = Path(".tenantplane")


# How a Redis Cluster is named in `redis_url` (see `Settings.redis_url`).
CLUSTER_SCHEME = "redis+cluster://"


class Settings(BaseSettings):
    """Read from `TENANTPLANE_*` environment variables once, in `main`.

    A `nats_url`/`redis_url` left empty means "the local system started by
    `tenantctl dev up`", found through its state file in `data_dir`.
    """

    model_config = SettingsConfigDict(env_prefix="TENANTPLANE_", frozen=True, extra="ignore")

    nats_url: str = ""
    # The read models' Redis: `redis://host:port/db`, or a Redis Cluster as
    # `redis+cluster://[user:password@]host:port[,host:port...]` (any of its nodes).
    redis_url: str = ""
    # The job queue's Redis (dramatiq), a single primary; empty: `redis_url`.
    jobs_redis_url: str = ""
    database_url: str = ""
    data_dir: Path = DEFAULT_DATA_DIR
    # Namespace of subjects, streams and Redis keys; lets installations share servers.
    namespace: str = "tp"
    replicas: int = Field(default=1, ge=1, le=5)
    duplicate_window_s: float = Field(default=600.0, gt=0)
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_creds_file: Path | None = None
    # Replies to this process's requests go here; a role's own prefix (`_INBOX_<role>`),
    # which NATS lets no other user subscribe to (see services/security/roles.py).
    nats_inbox_prefix: str | None = None
    nats_nkey_seed_file: Path | None = None
    nats_tls_ca_file: Path | None = None
    nats_tls_cert_file: Path | None = None
    nats_tls_key_file: Path | None = None
    config_schema_file: Path | None = None
    # Services' domains, as `module:ATTR` references to `Domain` objects, comma-separated
    # (`examples.billing.events:BILLING`): `tenantctl contracts export` writes their schemas.
    domains: Annotated[tuple[str, ...], NoDecode] = ()
    # Master keys that wrap tenants' data keys, newest first, comma-separated; or a file
    # holding them one per line. Only the config service needs them.
    secrets_master_keys: SecretStr | None = None
    secrets_master_key_file: Path | None = None
    # Worker pools: name -> how many jobs it runs at once (the scheduler's credit).
    pools: dict[str, int] = Field(default_factory=lambda: {"default": 8})
    default_pool: str = "default"
    # A tenant assigned to a pool not in `pools` gets a dedicated pool of this capacity:
    # the scheduler admits its jobs, and the pool reconciler runs workers for it. 0: refused.
    dedicated_pool_capacity: int = Field(default=4, ge=0, le=1024)
    # How long an idle worker waits between polls of its queue at most. The scheduler
    # wakes a pool's workers when it queues attempts, so this only bounds the pick-up
    # delay of an attempt whose wake-up was lost.
    worker_poll_ms: int = Field(default=100, ge=1, le=10_000)
    # First retry delay of a failed job; doubles per attempt (with jitter), capped.
    job_retry_base_s: float = Field(default=1.0, gt=0)
    job_retry_max_s: float = Field(default=300.0, gt=0)
    # A running attempt whose worker sent no heartbeat for this long is failed `worker_lost`
    # (and retried while attempts remain); workers send one every third of it.
    job_lease_s: float = Field(default=15.0, ge=1)
    # How often the scheduler checks that each queued attempt's message is still in its
    # pool's queue, and queues again those that were lost (Redis lost its data).
    job_queue_audit_s: float = Field(default=5.0, gt=0)
    # Job events are kept this long (and, when > 0, up to this many bytes).
    jobs_retention_days: float = Field(default=30, gt=0)
    jobs_max_bytes: int = Field(default=-1, ge=-1)
    request_timeout_s: float = Field(default=5.0, gt=0)
    # The operations endpoint (/healthz, /readyz, /metrics) of every service process.
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=8470, ge=0, le=65535)
    # How often an idle projector checks that its read model is still there (a flushed or
    # restored Redis is found within this, then rebuilt and swapped in).
    projection_store_check_s: float = Field(default=2.0, gt=0)
    # Which part of its service a process runs: everything, only its command handlers
    # and loops, or only its projectors; `commands` and `projections` in two processes
    # (or Deployments) give each a core of its own (docs/performance.md, P1 and P6).
    serve_only: Literal["all", "commands", "projections"] = "all"
    # A service is ready while each of its projections is at most this many events behind.
    ready_max_lag: int = Field(default=1000, ge=0)
    # A failed loop (projector, scheduler, cron, reconciler) is restarted after a delay
    # doubling from the first to the max; it is counted and named by /readyz meanwhile.
    loop_backoff_first_s: float = Field(default=0.5, gt=0)
    loop_backoff_max_s: float = Field(default=30.0, gt=0)
    log_level: str = "info"
    log_format: str = Field(default="console", pattern="^(console|json)$")

    @field_validator("domains", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def master_keys(self) -> list[str]:
        """The secrets master keys, newest first (empty when none are configured)."""
        if self.secrets_master_keys is not None:
            text = self.secrets_master_keys.get_secret_value().replace(",", "\n")
        elif self.secrets_master_key_file is not None:
            text = self.secrets_master_key_file.read_text()
        else:
            return []
        return [line.strip() for line in text.splitlines() if line.strip()]

    def to_env(self) -> dict[str, str]:
        """These settings as the environment of a child process (every field that is set)."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, dict):
                value = json.dumps(value)
            elif isinstance(value, tuple):
                value = ",".join(value)
            env[f"TENANTPLANE_{name.upper()}"] = str(value)
        return env

    @property
    def subjects(self) -> Subjects:
        """Subject and stream names of this installation."""
        return Subjects(self.namespace)

    @property
    def keys(self) -> Keys:
        """Redis key names of this installation."""
        return Keys(self.namespace)
