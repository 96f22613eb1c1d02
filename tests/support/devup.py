"""`tenantctl dev up` run as a user would: its own process, a clean environment."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tenantplane.services.runtime.localstate import STATE_FILE

BILLING = "billing:billing-balance,billing-billing_ledger"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any TENANTPLANE_ setting (as on a fresh machine)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TENANTPLANE_")}
    return {**clean, "TENANTPLANE_OPS_PORT": "0", "TENANTPLANE_ACTOR": "ops@test", **extra}


@contextlib.contextmanager
def running_dev_up(
    data: Path,
    log_path: Path,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """`tenantctl dev up ARGS` keeping its data in `data` until the block ends; yields its
    state file. Without `--data-dir` in ARGS, `data` must be `cwd/.tenantplane`."""
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantplane.services.cli", "dev", "up", *args],
        env=env or clean_env(),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (data / STATE_FILE).exists():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "dev up did not come up in 60 s"
            time.sleep(0.2)
        yield json.loads((data / STATE_FILE).read_text())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
