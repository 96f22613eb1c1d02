"""The error tree: one root, one class per wire code, the same class on both ends."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import tenantplane.services as services
from tenantplane.contracts.commands import CommandError, ErrorCode
from tenantplane.services.cli.failures import report
from tenantplane.services.config.gitops import ApplyError
from tenantplane.services.runtime.errors import (
    ERRORS,
    AggregateBlocked,
    CommandFailed,
    ConcurrencyConflict,
    EventLogUnavailable,
    EventTooLarge,
    InvalidConfigValue,
    InvalidRequest,
    InvalidTransition,
    JobNotFound,
    NoRoute,
    SecretUnavailable,
    StoreUnavailable,
    TenantExists,
    TenantNotFound,
    TenantplaneError,
    TenantSuspended,
    Unavailable,
    UnknownJobKind,
    error_from_reply,
)
from tenantplane.services.worker.context import JobCancelledError

# One raised error per wire code; a new code fails below until it has a class and an example.
EXAMPLES: dict[ErrorCode, TenantplaneError] = {
    ErrorCode.INTERNAL: CommandFailed("config.set failed; see the service log"),
    ErrorCode.INVALID_REQUEST: InvalidRequest("key: pattern '^[a-z]{0,127}$'", field="key"),
    ErrorCode.CONCURRENCY_CONFLICT: ConcurrencyConflict("tp.evt.acme.config", 3, 5),
    ErrorCode.TENANT_NOT_FOUND: TenantNotFound("no tenant ghost", tenant_id="ghost"),
    ErrorCode.TENANT_EXISTS: TenantExists("tenant acme exists", tenant_id="acme"),
    ErrorCode.TENANT_SUSPENDED: TenantSuspended("tenant acme is suspended", tenant_id="acme"),
    ErrorCode.INVALID_TRANSITION: InvalidTransition("job j1 is succeeded already"),
    ErrorCode.INVALID_CONFIG_VALUE: InvalidConfigValue("rate_limit: -5 is below 0", key="x"),
    ErrorCode.JOB_NOT_FOUND: JobNotFound("no job j1 for tenant acme", tenant_id="acme"),
    ErrorCode.UNKNOWN_JOB_KIND: UnknownJobKind(
        "no worker of pool default runs jobs of kind 'x'", kind="x", pool="default", served=[]
    ),
    ErrorCode.NO_ROUTE: NoRoute("no route to billing for acme", service="billing"),
    ErrorCode.SECRET_UNAVAILABLE: SecretUnavailable("the data key was destroyed"),
    ErrorCode.AGGREGATE_BLOCKED: AggregateBlocked("tp.evt.acme.config", 42, "InvalidEvent"),
    ErrorCode.EVENT_TOO_LARGE: EventTooLarge("tp.evt.acme.config", 2_000_000, 1_048_576),
    ErrorCode.UNAVAILABLE: Unavailable("append to tp.evt.acme.config timed out"),
}

# Raised inside a job function to stop it, and caught by the worker: a signal like
# asyncio.CancelledError, not an error a caller handles.
SIGNALS = {JobCancelledError}


def travelled(error: TenantplaneError) -> TenantplaneError:
    """`error` as a caller gets it: into a reply, through JSON, and back."""
    wire = error.to_reply_error().model_dump_json()
    return error_from_reply(CommandError.model_validate_json(wire))


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_error_code_comes_back_as_its_own_class(code: ErrorCode) -> None:
    # Given the error a service raises for this code
    assert code in EXAMPLES, f"{code} has no example error"
    raised = EXAMPLES[code]
    assert type(raised) is ERRORS[code]
    # When it travels in a reply and the caller rebuilds it
    rebuilt = travelled(raised)
    # Then the caller catches the same class, with the same words and details
    assert type(rebuilt) is type(raised)
    assert (rebuilt.code, rebuilt.message, rebuilt.details) == (
        raised.code,
        raised.message,
        raised.details,
    )
    assert str(rebuilt) == str(raised)


def test_a_blocked_aggregate_comes_back_naming_the_event_and_how_to_clear_it() -> None:
    # Given a command refused because event 42 of acme's config cannot be read
    raised = AggregateBlocked("tp.evt.acme.config", 42, "InvalidEvent: rate_limit: not an int")
    # When the caller gets the reply
    rebuilt = travelled(raised)
    # Then it catches AggregateBlocked, knows which event, and is told what to run
    assert isinstance(rebuilt, AggregateBlocked)
    assert (rebuilt.subject, rebuilt.seq, rebuilt.reason) == (
        "tp.evt.acme.config",
        42,
        "InvalidEvent: rate_limit: not an int",
    )
    assert rebuilt.message == (
        "tp.evt.acme.config is blocked by event 42 that cannot be read "
        "(InvalidEvent: rate_limit: not an int); inspect it with 'tenantctl dlq list' "
        "and discard it with 'tenantctl dlq discard 42 --reason ...'"
    )


def test_an_oversize_event_is_an_invalid_request_with_its_size_and_limit() -> None:
    rebuilt = travelled(EventTooLarge("tp.evt.acme.config", 2_000_000, 1_048_576))
    assert isinstance(rebuilt, EventTooLarge)
    assert isinstance(rebuilt, InvalidRequest)
    assert (rebuilt.size, rebuilt.limit) == (2_000_000, 1_048_576)


def test_a_conflict_comes_back_with_its_sequences() -> None:
    rebuilt = travelled(ConcurrencyConflict("tp.evt.acme.config", 3, None))
    assert isinstance(rebuilt, ConcurrencyConflict)
    assert (rebuilt.subject, rebuilt.expected, rebuilt.actual) == ("tp.evt.acme.config", 3, None)


@pytest.mark.parametrize(
    ("raised", "arrives_as"),
    [
        (EventLogUnavailable("cannot reach JetStream"), Unavailable),
        (StoreUnavailable("projection commit failed", server="redis"), Unavailable),
        (ApplyError(["tenants/acme.yaml:3: bad value"]), InvalidRequest),
    ],
)
def test_a_refined_error_travels_as_the_class_of_its_code(
    raised: TenantplaneError, arrives_as: type[TenantplaneError]
) -> None:
    rebuilt = travelled(raised)
    assert type(rebuilt) is arrives_as
    assert rebuilt.message == raised.message


def test_which_connection_failed_stays_in_the_process_that_saw_it() -> None:
    # Given a store error that knows it was Redis
    raised = StoreUnavailable("cannot read projection position", server="redis")
    assert raised.server == "redis"
    # Then on the wire it is just unavailable: the caller's Redis is not the service's
    rebuilt = travelled(raised)
    assert isinstance(rebuilt, Unavailable)
    assert rebuilt.server is None
    assert "server" not in rebuilt.details


def _service_modules() -> list[str]:
    found = pkgutil.walk_packages(services.__path__, prefix="tenantplane.services.")
    # Migration scripts run on import, and `__main__` starts the CLI.
    return [
        m.name for m in found if ".migrations" not in m.name and not m.name.endswith("__main__")
    ]


def _error_classes() -> list[type[BaseException]]:
    classes: dict[str, type[BaseException]] = {}
    for name in _service_modules():
        module = importlib.import_module(name)
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, BaseException) and member.__module__ == name:
                classes[f"{name}.{member.__qualname__}"] = member
    return [c for _, c in sorted(classes.items())]


def test_every_service_error_derives_from_the_one_root() -> None:
    strays = [
        f"{c.__module__}.{c.__qualname__}"
        for c in _error_classes()
        if not issubclass(c, TenantplaneError)
        and not c.__name__.startswith("_")
        and c not in SIGNALS
    ]
    assert strays == []


def test_every_error_is_its_codes_class_or_a_refinement_of_it() -> None:
    named = [
        c for c in _error_classes() if issubclass(c, TenantplaneError) and c is not TenantplaneError
    ]
    assert len(named) > len(ERRORS)
    unregistered = [
        f"{c.__qualname__} ({c.code})" for c in named if not issubclass(c, ERRORS[c.code])
    ]
    assert unregistered == []


def test_the_contracts_doc_gives_every_code_the_exit_code_tenantctl_uses() -> None:
    # Given the code table of docs/contracts.md
    doc = Path(__file__).parents[2] / "docs" / "contracts.md"
    rows = re.findall(r"^\| `([a-z_]+)` \| .+ \| ([0-3]) \|$", doc.read_text(), re.MULTILINE)
    documented = {code: int(exit_code) for code, exit_code in rows}
    # Then it lists every code, with the exit code tenantctl gives a caller who gets it
    assert set(documented) == {code.value for code in ErrorCode}
    for code, raised in EXAMPLES.items():
        assert report(travelled(raised)) == documented[code.value], code
