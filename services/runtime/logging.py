"""Structured logging (structlog): console lines for people, JSON for machines.

Tracebacks are rendered as plain text, never with local variables (a frame's
variables may hold a secret), and every event then passes `redaction.scrub`.
"""

from __future__ import annotations

import logging

import structlog

from tenantplane.services.runtime.redaction import scrub


def configure(level: str = "info", fmt: str = "console") -> None:
    """Set up structlog and the standard library's logging once per process."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # The traceback as text (no locals), so that the scrub sees it.
            structlog.processors.format_exc_info,
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), format="%(name)s: %(message)s")
    quiet_library_loggers()


def quiet_library_loggers() -> None:
    """Silence library warnings that are noise, not news, for services and the CLI alike.

    asyncio warns on every TLS connection the peer closes ("returning true from
    eof_received() has no effect when using ssl").
    """
    logging.getLogger("asyncio").setLevel(logging.ERROR)
