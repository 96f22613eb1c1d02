"""The one way job code reaches its worker: requests over a pair of pipes.

Job code runs in the worker's process, so it cannot be sandboxed; what can be
kept from it is every *object* that leads elsewhere. A job's context holds a
`JobChannel`: two file descriptors and nothing else. Requests (`secrets`,
`progress`, `cancelled`) go down one pipe as length-prefixed JSON; the worker
reads them on its event loop, answers for the job's own tenant and job (bound
on the worker's side, out of the job's reach), and replies up the other pipe.
No attribute, closure or bound method of the context leads to the worker, its
connections or another tenant's data. Untrusted or regulated tenants still get
dedicated pools: in-process code can reach anything by other means (`gc`,
raw file descriptors), and a pool's credentials only reveal its own tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import structlog

from tenantplane.services.runtime.errors import InvalidRequest

_HEADER = 4
log = structlog.get_logger(__name__)
Serve = Callable[[dict[str, Any]], Awaitable[Any]]


class Requests(Protocol):
    """What a job context asks through."""

    def ask(self, request: dict[str, Any]) -> Any:
        """Send `request` and wait for its answer."""
        ...


class JobRequestFailed(InvalidRequest):
    """The worker could not answer a job's request."""


class JobChannel:
    """The job's end: two file descriptors (write requests, read answers)."""

    __slots__ = ("_answers", "_requests")

    def __init__(self, requests: int, answers: int) -> None:
        self._requests, self._answers = requests, answers

    def ask(self, request: dict[str, Any]) -> Any:
        """Send `request` and wait for its answer (blocks the job's thread)."""
        _write_frame(self._requests, orjson.dumps(request))
        reply = orjson.loads(_read_exactly(self._answers, _length(self._answers)))
        if "error" in reply:
            raise JobRequestFailed(str(reply["error"]))
        return reply.get("value")


class ChannelServer:
    """The worker's end of one job's channel, served on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, serve: Serve) -> None:
        self.loop, self.serve = loop, serve
        self._buffer = bytearray()
        request_read, self._request_write = os.pipe()
        self._answer_read, answer_write = os.pipe()
        self._request_read, self._answer_write = request_read, answer_write
        os.set_blocking(request_read, False)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # The job's end of the pipes.
        self.channel = JobChannel(self._request_write, self._answer_read)

    def open(self) -> JobChannel:
        """Start serving (on the loop's thread); the channel to hand to the job."""
        self.loop.add_reader(self._request_read, self._readable)
        return self.channel

    def _readable(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._buffer += os.read(self._request_read, 65536)
        while len(self._buffer) >= _HEADER:
            size = int.from_bytes(self._buffer[:_HEADER], "big")
            if len(self._buffer) < _HEADER + size:
                return
            body = bytes(self._buffer[_HEADER : _HEADER + size])
            del self._buffer[: _HEADER + size]
            task = self.loop.create_task(self._answer(body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, body: bytes) -> None:
        try:
            reply = {"value": await self.serve(orjson.loads(body))}
        except Exception as e:
            log.warning("job.request_failed", error=f"{type(e).__name__}: {e}")
            reply = {"error": f"{type(e).__name__}: {e}"}
        _write_frame(self._answer_write, orjson.dumps(reply))

    def close(self) -> None:
        """Stop serving and close both pipes (on the loop's thread); once only, since a
        closed descriptor's number may already name another job's pipe."""
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self._request_read)
        for descriptor in (
            self._request_read,
            self._request_write,
            self._answer_read,
            self._answer_write,
        ):
            with contextlib.suppress(OSError):
                os.close(descriptor)


def _write_frame(descriptor: int, body: bytes) -> None:
    frame = memoryview(len(body).to_bytes(_HEADER, "big") + body)
    while frame:
        frame = frame[os.write(descriptor, frame) :]


def _length(descriptor: int) -> int:
    return int.from_bytes(_read_exactly(descriptor, _HEADER), "big")


def _read_exactly(descriptor: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(descriptor, left)
        if not chunk:
            raise JobRequestFailed("the worker closed the job's channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
