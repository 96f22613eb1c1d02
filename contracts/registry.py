"""The registry of event types: decoding with upcasting of older schema versions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Union

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from tenantplane.contracts.envelope import Envelope, Event, typed_envelope
from tenantplane.contracts.errors import (
    InvalidEvent,
    MalformedMessage,
    UnknownEventType,
    UnknownSchemaVersion,
    describe,
)

EventData = dict[str, Any]
UpcastFn = Callable[[EventData], EventData]

# Decoding refuses anything bigger: one event is a fact, not a file upload.
MAX_EVENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class Upcaster:
    """Turns the data of `event_type` at `from_version` into `from_version + 1`."""

    event_type: str
    from_version: int
    upcast: UpcastFn


@dataclass(frozen=True)
class EventRegistry:
    """Known event types by name, with the upcasters that bring old versions current."""

    types: Mapping[str, type[Event]]
    upcasters: Mapping[tuple[str, int], UpcastFn] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Iterable[type[Event]], upcasters: Iterable[Upcaster] = ()) -> EventRegistry:
        """Build a registry; a type registered twice or a gap in an upcaster chain is an error."""
        types: dict[str, type[Event]] = {}
        for event_cls in events:
            if event_cls.event_type in types:
                raise ValueError(f"event type {event_cls.event_type!r} registered twice")
            types[event_cls.event_type] = event_cls
        chains = {(u.event_type, u.from_version): u.upcast for u in upcasters}
        for name, version in chains:
            if name not in types:
                raise ValueError(f"upcaster for unknown event type {name!r}")
            if version >= types[name].schema_version:
                raise ValueError(f"upcaster {name}@v{version} is not older than the current type")
        return cls(types=types, upcasters=chains)

    @functools.cached_property
    def _validate_current(self) -> Callable[[bytes], Envelope]:
        """pydantic-core's validator of the current versions, called without the
        adapter's Python wrapper (half a microsecond an event on a replay)."""
        adapter = _current_versions(tuple(self.types.values()))
        adapter.rebuild()  # the models defer building theirs until first use
        validate: Callable[[bytes], Envelope] = adapter.validator.validate_json
        return validate

    def event_class(self, event_type: str) -> type[Event]:
        """The class of `event_type`, or `UnknownEventType`."""
        try:
            return self.types[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def upcast(self, event_type: str, version: int, data: EventData) -> EventData:
        """Bring `data` written at `version` up to the current schema version."""
        current = self.event_class(event_type).schema_version
        if version > current:
            raise UnknownSchemaVersion(event_type, version, current)
        while version < current:
            step = self.upcasters.get((event_type, version))
            if step is None:
                raise UnknownSchemaVersion(event_type, version, current)
            data = step(data)
            version += 1
        return data

    def decode(self, raw: bytes) -> Envelope:
        """Turn wire bytes into a typed, current-version envelope.

        Raises:
            MalformedMessage: not a JSON object of the envelope's shape, or too big.
            UnknownEventType, UnknownSchemaVersion: the type or version is not known.
            InvalidEvent: the data or the envelope failed validation.
        """
        if len(raw) <= MAX_EVENT_BYTES:
            try:
                # The common case, a current-version event of a known type: parsed and
                # validated in one pass over the bytes.
                current = self._validate_current(raw)
                return current
            except ValidationError:
                pass  # an older version, or not valid: the path below upcasts or says why
        doc = _parse_object(raw)
        event_type, version, data = _head(doc)
        event_cls = self.event_class(event_type)
        try:
            if version == event_cls.schema_version:
                # Current version (the common case): one validation of the whole envelope.
                return typed_envelope(event_cls).model_validate(doc)
            typed = event_cls.model_validate(self.upcast(event_type, version, data))
            return Envelope.model_validate(
                {**doc, "schema_version": event_cls.schema_version, "data": typed}
            )
        except ValidationError as e:
            raise InvalidEvent(f"{event_type}@v{version}: {describe(e)}") from e


@functools.cache
def _current_versions(events: tuple[type[Event], ...]) -> TypeAdapter[Envelope]:
    """One validator of every event type's current version, chosen by the envelope's
    `type` (a tagged union of the typed envelopes)."""
    if len(events) == 1:
        return TypeAdapter(typed_envelope(events[0]))
    members: Any = Union[tuple(typed_envelope(e) for e in events)]  # noqa: UP007
    tagged: Any = Annotated[members, Field(discriminator="type")]
    adapter: TypeAdapter[Envelope] = TypeAdapter(tagged)
    return adapter


def _parse_object(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_EVENT_BYTES:
        raise MalformedMessage(f"event of {len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedMessage(f"not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise MalformedMessage(f"envelope must be a JSON object, got {type(doc).__name__}")
    return doc


def _head(doc: dict[str, Any]) -> tuple[str, int, EventData]:
    event_type, version, data = doc.get("type"), doc.get("schema_version"), doc.get("data")
    if not isinstance(event_type, str):
        raise MalformedMessage("envelope has no string 'type'")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MalformedMessage("envelope has no positive integer 'schema_version'")
    if not isinstance(data, dict):
        raise MalformedMessage("envelope has no object 'data'")
    return event_type, version, data
