"""Job kinds: the functions workers run, registered by name.

    kinds = JobKinds()

    @kinds.job("report.monthly")
    def monthly_report(ctx: JobContext, month: str) -> dict[str, object]:
        ctx.progress(0.5, "half way")
        ctx.check_cancelled()
        return {"rows": 42}

A job function gets its `JobContext` and the job's args as keyword arguments,
and returns a JSON-able dict (the job's result) or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenantplane.services.runtime.errors import InvalidRequest
from tenantplane.services.worker.context import JobContext

JobFunction = Callable[..., dict[str, Any] | None]


class UnknownKind(InvalidRequest):
    """No function is registered for a job's kind."""


class JobKinds:
    """A registry of job functions by kind."""

    def __init__(self) -> None:
        self._functions: dict[str, JobFunction] = {}

    def job(self, kind: str) -> Callable[[JobFunction], JobFunction]:
        """Register the decorated function as the job of `kind`."""

        def register(function: JobFunction) -> JobFunction:
            if kind in self._functions:
                raise ValueError(f"job kind {kind!r} is registered twice")
            self._functions[kind] = function
            return function

        return register

    def get(self, kind: str) -> JobFunction:
        """The function of `kind`."""
        try:
            return self._functions[kind]
        except KeyError:
            raise UnknownKind(f"no job function for kind {kind!r}") from None

    def names(self) -> list[str]:
        """Registered kinds."""
        return sorted(self._functions)

    def run(self, ctx: JobContext, kind: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Run the job of `kind` with its args."""
        return self.get(kind)(ctx, **args)
