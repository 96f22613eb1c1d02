"""Keeping secret values out of logs and error texts.

While a command that carries secrets is handled, its secret values are known
(`hiding`); every log event written meanwhile, and the error text the command
answers with, has each of them replaced by `REDACTED` (`redact`, and the
structlog processor `scrub`). Tracebacks are rendered to text before the scrub
and never with local variables (see `logging.configure`), so a value that
reached an exception's message is scrubbed too, and one that sits in a frame's
variables is never printed at all.

Redaction matches text: a secret's string form, and every string and number
inside a structured value, from `MIN_HIDDEN` characters on (a shorter one would
match inside any word and number while hiding next to nothing). It is a second
line of defence; the first is that handlers do not put values into messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, MutableMapping
from contextvars import ContextVar
from typing import Any

import orjson

REDACTED = "<redacted>"
MIN_HIDDEN = 4

_HIDDEN: ContextVar[tuple[str, ...]] = ContextVar("tenantplane_hidden", default=())


@contextlib.contextmanager
def hiding(values: Iterable[Any]) -> Iterator[None]:
    """Redact `values` (any JSON values) from logs and error texts inside the block."""
    texts = {text for value in values for text in _texts(value) if len(text) >= MIN_HIDDEN}
    token = _HIDDEN.set(tuple(sorted(texts | set(_HIDDEN.get()), key=len, reverse=True)))
    try:
        yield
    finally:
        _HIDDEN.reset(token)


def redact(text: str) -> str:
    """`text` with every value hidden in this context replaced by `REDACTED`."""
    for hidden in _HIDDEN.get():
        if hidden in text:
            text = text.replace(hidden, REDACTED)
    return text


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact hidden values from every field of a log event."""
    if _HIDDEN.get():
        for name, value in event.items():
            event[name] = _scrubbed(value)
    return event


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(repr(value))


def _texts(value: Any) -> Iterator[str]:
    """The forms in which `value` may show up in text."""
    if isinstance(value, str):
        yield value
        return
    if isinstance(value, bool) or value is None:
        return  # true, false and null would redact every such word
    yield orjson.dumps(value).decode()
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    else:
        yield str(value)
