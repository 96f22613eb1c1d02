"""The README's tour, run line by line as written, against `tenantctl dev up`.

The tour is read from README.md itself, so it cannot drift from what works: each
command must succeed, but for the lines whose comment says they are refused
(`# error: ...`, `# refused: ...`), which must fail with exit code 1 and no
traceback. Activating the environment is done by putting its `bin` first on
PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.devup import clean_env, running_dev_up

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
REFUSED = re.compile(r"#\s*(error|refused)\b")


def tour() -> list[str]:
    """The commands of the tour's second shell block (the first only starts the system)."""
    section = README.read_text().split("## A 5-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    joined = blocks[1].replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_tour_is_read_from_the_readme() -> None:
    commands = tour()
    assert commands[0] == ". .venv/bin/activate"
    assert sum(1 for c in commands if REFUSED.search(c)) == 3
    assert len(commands) > 30


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    # The README's own ports: its `curl localhost:8470` reads the metrics there.
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("TENANTPLANE_OPS_PORT")
    data = tmp_path / ".tenantplane"
    with running_dev_up(data, tmp_path / "dev-up.log", cwd=tmp_path, env=env):
        for command in tour()[1:]:
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            said = done.stdout + done.stderr
            assert "Traceback" not in said, (command, said)
            if REFUSED.search(command):
                assert done.returncode == 1, (command, said)
            else:
                assert done.returncode == 0, (command, said)
