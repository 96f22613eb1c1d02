"""Connections to NATS and Redis built from settings (credentials and TLS included)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import nats
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.services.runtime.errors import EventLogUnavailable
from tenantplane.services.runtime.localstate import resolve_nats_url, resolve_redis_url
from tenantplane.services.runtime.settings import Settings
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
    """A Redis client (connections are made lazily, and again after a restart)."""
    return aioredis.Redis.from_url(
        resolve_redis_url(settings),
        decode_responses=False,
        health_check_interval=10,
        retry_on_timeout=True,
    )
