"""Requests to running processes: projector control, and the status of services and pools.

These are `tenantctl`'s requests to the processes of its own release; their
replies name a few fields every release keeps (`ok`, `error`, the names) and
otherwise carry what the process reports, which may grow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from tenantplane.contracts.schema import ContractJsonSchema
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.asyncapi.addresses import Address, address
from tenantplane.services.asyncapi.spec import JsonObject, Spec, channel_message
from tenantplane.services.runtime.projector import CONTROL_ACTIONS, RebuildDone, RedriveResult

_REQUEST: JsonObject = {
    "name": "control",
    "title": "Projector control request",
    "summary": "An action on a projection, or on one tenant's part of it.",
    "payload": {
        "type": "object",
        "properties": {
            "tenant": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": "Only this tenant's part (redrive, rebuild); absent or null: all.",
            }
        },
        "description": "An empty body reads as `{}`.",
    },
}
_FAILED: JsonObject = {
    "type": "object",
    "properties": {
        "ok": {"const": False},
        "projection": {"type": "string"},
        "error": {"type": "string", "description": "What went wrong: `<exception>: <message>`."},
    },
    "required": ["ok", "projection", "error"],
}
_STATUS: JsonObject = {
    "type": "object",
    "properties": {"ok": {"const": True}, "projection": {"type": "string"}},
    "required": ["ok", "projection"],
    "description": "Where the projection stands: its store, checkpoint, lag, parked events "
    "and blocked subjects.",
}
_NOTHING: JsonObject = {"description": "The body is ignored (tenantctl sends none, or `{}`)."}


def add_control(spec: Spec, subjects: Subjects) -> None:
    """Projector control (per action, and status of all), service and pool status."""
    replies = {
        "redrive": _succeeded(spec, RedriveResult),
        "rebuild": _succeeded(spec, RebuildDone),
        "status": _STATUS,
    }
    request = spec.message("control", _REQUEST)
    for action in CONTROL_ACTIONS:
        where = address(_control(subjects, action), "projection")
        reply = _reply(spec, f"control.{action}", {"oneOf": [replies[action], _FAILED]})
        summary = (
            f"One replica of the projection answers `{action}` (queue group `projector-<name>`)."
        )
        _add_request(spec, f"control.{action}", where, request, reply, summary)
    status = _reply(spec, "control.status", {"oneOf": [_STATUS, _FAILED]})
    _add_request(
        spec, "control.all.status", Address(subjects.control_all("status"), ()), request, status,
        "Every running projection answers, one replica each: gather the replies for a while.",
    )  # fmt: skip
    _add_status(spec, subjects)


def _add_status(spec: Spec, subjects: Subjects) -> None:
    nothing = spec.message(
        "empty", {"name": "empty", "title": "Empty request", "payload": _NOTHING}
    )
    service = {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "instance": {"type": "string", "description": "`<host>:<pid>`"},
            "ready": {"type": "boolean"},
            "problems": {"type": "object", "additionalProperties": {"type": "string"}},
            "uptime_s": {"type": "number"},
        },
        "required": ["service", "instance", "ready", "problems"],
    }
    _add_request(
        spec, "status.services", Address(subjects.service_status(), ()), nothing,
        _reply(spec, "status.service", service),
        "Every running service answers with its status record: gather the replies for a while.",
    )  # fmt: skip
    pools = {
        "type": "array",
        "items": {"type": "object", "properties": {"pool": {"type": "string"}}},
        "description": "Per pool: capacity, jobs in flight, queued, and waiting per tenant.",
    }
    _add_request(
        spec, "status.pools", Address(subjects.scheduler_status(), ()), nothing,
        _reply(spec, "status.pools", pools),
        "One scheduler replica answers with the load of every pool (queue group `scheduler`).",
    )  # fmt: skip


def _control(subjects: Subjects, action: str) -> Callable[[str], str]:
    return lambda projection: subjects.control(projection, action)


def _succeeded(spec: Spec, result: type[Any]) -> JsonObject:
    """The reply of an action that worked: `ok` and the fields of its result."""
    exported = TypeAdapter(result).json_schema(schema_generator=ContractJsonSchema)
    schema: JsonObject = spec.payload(exported, result.__name__)
    schema["properties"] = {"ok": {"const": True}, **schema["properties"]}
    schema["required"] = ["ok", *schema.get("required", [])]
    return schema


def _reply(spec: Spec, key: str, payload: JsonObject) -> JsonObject:
    name = f"{key}.reply"
    return spec.reply(name, {"name": name, "title": f"{key} reply", "payload": payload})


def _add_request(
    spec: Spec, key: str, where: Address, request: JsonObject, reply: JsonObject, summary: str
) -> None:
    """A channel of `request` and the `receive` operation answering it with `reply`."""
    channel = spec.channel(key, {**where.channel(), "title": key, "messages": {"request": request}})
    spec.operation(
        key,
        {
            "action": "receive",
            "channel": channel,
            "messages": [channel_message(key, "request")],
            "reply": reply,
            "summary": summary,
        },
    )
