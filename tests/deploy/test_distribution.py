"""The built distribution: one top-level package, `tenantplane`, and nothing generic."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_only_the_tenantplane_package(tmp_path: Path) -> None:
    # Given the repository's layout (contracts/ and services/ at the top)
    # When a wheel is built from it
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("tenantplane-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    # Then everything is under `tenantplane/`, with the CLI and the migration template
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert {n.split("/")[0] for n in names} == {"tenantplane", dist_info}
    assert "tenantplane/services/cli/main.py" in names
    assert "tenantplane/contracts/envelope.py" in names
    assert "tenantplane/services/runtime/migrations/script.py.mako" in names
    assert not any(n.startswith(("tests/", "examples/", "bench/")) for n in names)
