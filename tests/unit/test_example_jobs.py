"""The example job kinds, run with a job context (the HTTP endpoint is a stand-in for an
external system)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tenantplane.services.config.sdk import TenantConfig
from tenantplane.services.worker.context import JobContext
from tenantplane.services.worker.examples import KINDS

SEEN: list[dict[str, Any]] = []


class Worker:
    """Answers a job's requests as a worker would (these tests are about the job kinds)."""

    def __init__(self, progress: list[float]) -> None:
        self.progress = progress

    def ask(self, request: dict[str, Any]) -> Any:
        if request["ask"] == "secrets":
            return {"secret.token": "t0k"}
        if request["ask"] == "progress":
            self.progress.append(request["fraction"])
            return None
        return False  # not cancelled


def context(progress: list[float]) -> JobContext:
    config = TenantConfig("acme", "active", "gold", 7, {"rate_limit": 5})
    return JobContext("acme", "j-1", 1, config, Worker(progress))


@pytest.fixture
def endpoint() -> Iterator[str]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            SEEN.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_report_write_writes_the_tenants_own_config(tmp_path: Path) -> None:
    progress: list[float] = []
    result = KINDS.run(context(progress), "report.write", {"directory": str(tmp_path)})
    assert result is not None
    written = json.loads(Path(result["path"]).read_text())
    assert written == {"tenant": "acme", "plan": "gold", "config": {"rate_limit": 5}}
    assert progress == [0.5]


def test_sync_http_calls_with_the_tenant_header_and_its_secret(endpoint: str) -> None:
    result = KINDS.run(context([]), "sync.http", {"url": endpoint, "token_key": "secret.token"})
    assert result == {"status": 204}
    headers = {k.lower(): v for k, v in SEEN[-1]["headers"].items()}
    assert headers["x-tenant-id"] == "acme"
    assert headers["authorization"] == "Bearer t0k"
    assert SEEN[-1]["body"] == {"job": "j-1"}
