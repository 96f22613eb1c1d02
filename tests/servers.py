"""Real servers for the tests, behind one interface with three backends.

    local     (default) nats-server and redis-server binaries on free ports, with
              temporary store dirs; PostgreSQL from TENANTPLANE_TEST_POSTGRES_URL or
              the machine's 127.0.0.1:5432/test
    docker    testcontainers, when a Docker engine is reachable
    external  URLs from TENANTPLANE_TEST_NATS_URL / _REDIS_URL / _POSTGRES_URL

Choose with TENANTPLANE_TEST_SERVERS; a server that cannot be provided fails
the run, it is never skipped silently.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tenantplane.services.runtime import embedded

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Servers:
    """Where the shared test servers listen."""

    nats_url: str
    redis_url: str
    postgres_url: str


def backend_name() -> str:
    """The backend chosen by the environment."""
    chosen = os.environ.get("TENANTPLANE_TEST_SERVERS")
    if chosen:
        return chosen
    if os.environ.get("TENANTPLANE_TEST_NATS_URL"):
        return "external"
    return "local"


@contextlib.contextmanager
def provide(workdir: Path) -> Iterator[Servers]:
    """Servers for one test session, stopped at exit."""
    backends = {"local": _local, "docker": _docker, "external": _external}
    name = backend_name()
    if name not in backends:
        raise RuntimeError(f"TENANTPLANE_TEST_SERVERS={name!r}: use one of {sorted(backends)}")
    with backends[name](workdir) as servers:
        yield servers


@contextlib.contextmanager
def redis_cluster(workdir: Path) -> Iterator[embedded.RedisClusterProcesses | str]:
    """A Redis Cluster of 3 masters with a replica each, for one test: started from the
    local redis-server binary (the `local` backend), or the one named by
    TENANTPLANE_TEST_REDIS_CLUSTER_URL (a `redis+cluster://` URL, as a string)."""
    external = os.environ.get("TENANTPLANE_TEST_REDIS_CLUSTER_URL")
    if external:
        yield external
        return
    if backend_name() != "local":
        raise RuntimeError(
            "no Redis Cluster: set TENANTPLANE_TEST_REDIS_CLUSTER_URL for this backend"
        )
    cluster = embedded.redis_cluster(workdir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _postgres_url() -> str:
    return os.environ.get("TENANTPLANE_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


@contextlib.contextmanager
def _local(workdir: Path) -> Iterator[Servers]:
    nats = embedded.nats_server(workdir / "nats").start()
    try:
        redis = embedded.redis_server(workdir / "redis", persist=False).start()
        try:
            yield Servers(nats.url, redis.url, _postgres_url())
        finally:
            redis.stop()
    finally:
        nats.stop()


@contextlib.contextmanager
def _external(_: Path) -> Iterator[Servers]:
    try:
        yield Servers(
            os.environ["TENANTPLANE_TEST_NATS_URL"],
            os.environ["TENANTPLANE_TEST_REDIS_URL"],
            _postgres_url(),
        )
    except KeyError as e:
        raise RuntimeError(f"external test servers need {e.args[0]}") from None


@contextlib.contextmanager
def _docker(_: Path) -> Iterator[Servers]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    nats = DockerContainer("nats:2.11").with_command("-js").with_exposed_ports(4222)
    with nats, RedisContainer("redis:7") as redis, PostgresContainer("postgres:15") as pg:
        yield Servers(
            f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}",
            f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}",
            pg.get_connection_url().replace("psycopg2", "psycopg"),
        )
