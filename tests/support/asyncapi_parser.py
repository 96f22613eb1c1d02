"""The official AsyncAPI parser (`@asyncapi/parser`, pinned in tests/asyncapi/), run by node.

Its node packages are installed on first use (`npm ci` from the lock file, into
tests/asyncapi/node_modules, which git ignores), so a fresh clone needs only node
and npm. Without them the check cannot run: in CI (`CI` set) that fails the run;
on a developer's machine the test is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PARSER_DIR = Path(__file__).resolve().parents[1] / "asyncapi"
SCRIPT = PARSER_DIR / "parse.mjs"
# Present once `npm ci` has installed the lock file's packages.
INSTALLED = PARSER_DIR / "node_modules" / "@asyncapi" / "parser" / "package.json"
INSTALL_TIMEOUT_S = 240


def in_ci() -> bool:
    """Whether this run is CI's (where nothing may be skipped for a missing tool)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def parser_command() -> list[str]:
    """`node parse.mjs`, its packages installed; fails in CI and skips elsewhere without node."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"the AsyncAPI parser needs {' and '.join(missing)} on PATH"
        if in_ci():
            pytest.fail(f"{reason} (CI must run this check)")
        pytest.skip(reason)
    if not INSTALLED.exists():
        _install()
    return ["node", str(SCRIPT)]


def _install() -> None:
    result = subprocess.run(
        # No install scripts: the parser needs none (one dependency's is telemetry).
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=PARSER_DIR,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci in {PARSER_DIR} failed:\n{result.stdout}\n{result.stderr}")
