"""Connections to NATS and Redis built from settings (credentials and TLS included)."""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
from typing import Any, cast

import hiredis
import nats
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection

from tenantplane.services.runtime.errors import EventLogUnavailable, InvalidRequest
from tenantplane.services.runtime.localstate import resolve_nats_url, resolve_redis_url
from tenantplane.services.runtime.settings import CLUSTER_SCHEME, Settings
from tenantplane.services.security.localauth import local_login


def nats_options(settings: Settings, name: str) -> dict[str, Any]:
    """Keyword arguments for `nats.connect` (or FastStream's `NatsBroker`)."""
    settings = local_login(settings)
    options: dict[str, Any] = {
        "servers": [u.strip() for u in resolve_nats_url(settings).split(",")],
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 3,
    }
    if settings.nats_user is not None:
        options["user"] = settings.nats_user
        if settings.nats_password is not None:
            options["password"] = settings.nats_password.get_secret_value()
    if settings.nats_inbox_prefix is not None:
        options["inbox_prefix"] = settings.nats_inbox_prefix
    if settings.nats_creds_file is not None:
        options["user_credentials"] = str(settings.nats_creds_file)
    if settings.nats_nkey_seed_file is not None:
        options["nkeys_seed"] = str(settings.nats_nkey_seed_file)
    tls = _tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    return options


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.nats_tls_ca_file is None and settings.nats_tls_cert_file is None:
        return None
    context = ssl.create_default_context(
        cafile=str(settings.nats_tls_ca_file) if settings.nats_tls_ca_file else None
    )
    if settings.nats_tls_cert_file is not None:
        key = str(settings.nats_tls_key_file) if settings.nats_tls_key_file else None
        context.load_cert_chain(str(settings.nats_tls_cert_file), key)
    return context


async def connect_nats(settings: Settings, name: str, **callbacks: Any) -> NATS:
    """Connect to NATS, reconnecting forever once connected.

    Raises:
        EventLogUnavailable: no first connection within `request_timeout_s`, with the
            reason the client saw (refused, authorization, certificate, ...).
    """
    options = nats_options(settings, name)
    seen: list[Exception] = []

    async def remember(error: Exception) -> None:
        """Keep nats-py from printing; the reason goes into the error raised below."""
        seen.append(error)

    callbacks.setdefault("error_cb", remember)
    try:
        deadline = max(settings.request_timeout_s, 2.0)
        return await asyncio.wait_for(nats.connect(**options, **callbacks), deadline)
    except Exception as e:
        # nats-py keeps retrying a refused first connection: report its most telling
        # error (authorization, certificate) rather than the resets that follow it.
        telling = [x for x in seen if not isinstance(x, ConnectionError | TimeoutError)]
        cause = (telling or seen or [e])[0]
        reason = str(cause) or type(cause).__name__
        raise EventLogUnavailable(
            f"cannot connect to NATS at {', '.join(options['servers'])}: {reason}", server="nats"
        ) from e


def connect_redis(settings: Settings) -> aioredis.Redis:
    """A Redis client (connections are made lazily, and again after a restart); for a
    `redis+cluster://` URL, a Redis Cluster client that finds every node from those named.

    A cluster client takes the same commands; a command or transaction over keys of
    several hash slots is refused by the cluster (CROSSSLOT).
    """
    url = resolve_redis_url(settings)
    if url.startswith(CLUSTER_SCHEME):
        return cast(aioredis.Redis, cluster_client(url))
    client = aioredis.Redis.from_url(
        url, decode_responses=False, health_check_interval=10, retry_on_timeout=True
    )
    pool = client.connection_pool
    pool.connection_class = packed_in_c(pool.connection_class)
    return client


class _PackedInC:
    """Packs commands with hiredis (C), as redis-py's synchronous client does; its
    asyncio client packs them in Python, about five times the cost per argument (a
    rebuild's commit sends hundreds of thousands). Anything hiredis does not take
    (a bool, a memoryview) goes to redis-py's own packer, which says why or packs it."""

    def pack_command(self, *args: Any) -> list[bytes]:
        command = args[0]
        if isinstance(command, str):  # "CONFIG SET" and the like are several words
            args = (*command.encode().split(), *args[1:])
        elif b" " in command:
            args = (*command.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
            return packed


_Connection = type[aioredis.connection.AbstractConnection]
_PACKED_IN_C: dict[_Connection, _Connection] = {}


def packed_in_c(connection_class: _Connection) -> _Connection:
    """`connection_class` with commands packed by hiredis."""
    packed = _PACKED_IN_C.get(connection_class)
    if packed is None:
        name = f"PackedInC{connection_class.__name__}"
        packed = _PACKED_IN_C[connection_class] = type(name, (_PackedInC, connection_class), {})
    return packed


def cluster_client(url: str) -> RedisCluster:
    """A client of the Redis Cluster named by `redis+cluster://[user:pw@]host:port,...`."""
    parsed = urllib.parse.urlsplit(url)
    nodes = []
    for address in parsed.netloc.rpartition("@")[2].split(","):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidRequest(f"{url!r}: name the cluster's nodes as host:port,host:port")
        nodes.append(ClusterNode(host, int(port)))
    client = RedisCluster(
        startup_nodes=nodes,
        username=urllib.parse.unquote(parsed.username) if parsed.username else None,
        password=urllib.parse.unquote(parsed.password) if parsed.password else None,
        decode_responses=False,
        health_check_interval=10,
    )
    # The nodes it discovers make their connections from these (see `packed_in_c`).
    made = client.nodes_manager.connection_kwargs
    made["connection_class"] = packed_in_c(made.get("connection_class", Connection))
    return client
