"""The AsyncAPI 3.0 document of a tenantplane installation, generated from the contracts.

It describes every subject the services use, from their side: the commands
each service receives and answers (request/reply on NATS, as AsyncAPI reply
objects), the events appended per aggregate family (and per registered
domain), change notifications, dead letters, workers' lease heartbeats, the
audit of secret reveals, and the control and status requests `tenantctl`
sends. Payloads are the JSON Schemas `tenantctl contracts export` writes.

The document is built from the contracts rather than from FastStream's
generator: handlers take raw bytes (the command model parses them once), so
FastStream knows no payload, and it sees only the command subscribers, writes
NATS wildcards as channel addresses and places the correlation id in a header
nobody reads. Here every address is a subject built by `Subjects`, with
`{parameters}` for its variable tokens, every payload is an exported schema, and
a correlation id is declared only where one is carried (`correlation_id` in the
body of commands and events); a reply is correlated by its NATS reply subject.
`tests/asyncapi/` holds the official parser that CI checks the document with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tenantplane.contracts import COMMANDS, EVENTS
from tenantplane.contracts.domains import Domain
from tenantplane.contracts.schema import event_path, schemas
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.asyncapi.commands import add_commands
from tenantplane.services.asyncapi.control import add_control
from tenantplane.services.asyncapi.events import add_events
from tenantplane.services.asyncapi.notices import add_notices
from tenantplane.services.asyncapi.spec import JsonObject, Spec

__all__ = ["document"]

_DESCRIPTION = """\
Every NATS subject of a tenantplane installation, as its services use it.

Operations are the services' side: `receive` for what they serve and answer
(commands, control and status requests, workers' heartbeats), `send` for what
they publish (events, change notifications, dead letters, audit records).
Commands and other requests are NATS request/reply: the reply goes to the
request's reply subject (the `replyInbox` channel, whose address only the
requester knows). The subject root is `{root}`.
"""


def document(
    subjects: Subjects,
    version: str,
    domains: Sequence[Domain] = (),
    refined: Mapping[str, dict[str, Any]] | None = None,
) -> JsonObject:
    """The AsyncAPI document of every contract, and of `domains`' events.

    `refined` replaces exported schemas by path, as `contracts export` does with
    the config schema's keys (`ConfigSchema.command_schemas`).
    """
    exported = {**schemas(EVENTS, COMMANDS, domains), **(refined or {})}
    spec = Spec()
    add_commands(spec, subjects, COMMANDS, exported)
    add_events(spec, subjects, EVENTS, exported, {e: event_path(e) for e in EVENTS.types.values()})
    for domain in domains:
        paths = {
            e: f"domains/{domain.name}/{event_path(e)}" for e in domain.registry.types.values()
        }
        add_events(spec, subjects, domain.registry, exported, paths)
    add_notices(spec, subjects)
    add_control(spec, subjects)
    info = {
        "title": "tenantplane",
        "version": version,
        "description": _DESCRIPTION.format(root=subjects.root),
        "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
    }
    return spec.document(info, _servers())


def _servers() -> JsonObject:
    return {
        "nats": {
            "host": "{host}",
            "protocol": "nats",
            "description": "The installation's NATS server (`TENANTPLANE_NATS_URL`).",
            "variables": {"host": {"default": "localhost:4222", "description": "host:port"}},
        }
    }
