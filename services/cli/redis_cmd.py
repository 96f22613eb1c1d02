"""`tenantctl redis`: one Redis command against the system's Redis, as redis-cli would.

The read models are plain Redis with a documented key layout; this looks at
them without a redis-cli installed, and finds the local system's Redis by
itself (or the one `--redis-url` names).
"""

from __future__ import annotations

from typing import Any

import typer

from tenantplane.services.cli.context import run, settings_from
from tenantplane.services.cli.output import out
from tenantplane.services.runtime.connections import connect_redis
from tenantplane.services.runtime.stores.redis_ops import as_text


def redis(
    ctx: typer.Context,
    command: list[str] = typer.Argument(..., metavar="COMMAND [ARG]..."),
) -> None:
    """Run one Redis command against the system's Redis and print the reply.

    Example:  tenantctl redis HGETALL 'tp:tenant:{acme}:config'
    Example:  tenantctl redis SMEMBERS 'tp:{tenants}'
    """

    async def go() -> Any:
        client = connect_redis(settings_from(ctx))
        try:
            return await client.execute_command(*command)  # type: ignore[no-untyped-call]
        finally:
            await client.aclose()

    for line in _lines(run(go())):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _lines(reply: Any) -> list[str]:
    """The reply as redis-cli prints it: a value, numbered items, or field and value."""
    if reply is None:
        return ["(nil)"]
    if isinstance(reply, dict):
        items = [x for pair in reply.items() for x in pair]
        return [f"{i}) {_text(x)}" for i, x in enumerate(items, 1)]
    if isinstance(reply, list | set | tuple):
        return [f"{i}) {_text(x)}" for i, x in enumerate(reply, 1)] or ["(empty array)"]
    if isinstance(reply, int) and not isinstance(reply, bool):
        return [f"(integer) {reply}"]
    return [_text(reply)]


def _text(value: Any) -> str:
    return as_text(value) if isinstance(value, bytes | str) else str(value)


redis_app = typer.Typer()
redis_app.command("redis")(redis)
