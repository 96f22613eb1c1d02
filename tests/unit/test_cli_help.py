"""The root CLI lists its groups without importing them; what it lists is what they say."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tenantplane.services.cli.main import COMMANDS, load_command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_help_line_is_the_groups_own(name: str) -> None:
    command = load_command(name)
    first_line = (command.help or "").strip().splitlines()[0]
    assert COMMANDS[name][2] == first_line


def test_the_roots_help_loads_no_group() -> None:
    modules = {f"tenantplane.services.cli.{module}" for module, _, _ in COMMANDS.values()}
    probe = (
        "import sys, contextlib, io\n"
        "from tenantplane.services.cli.main import app\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    app(['--help'])\n"
        "print('\\n'.join(sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not modules & set(loaded)
    assert "faststream" not in {m.split(".")[0] for m in loaded}


def _leaves(command: Any, path: list[str]) -> list[tuple[str, Any]]:
    if getattr(command, "hidden", False):
        return []  # internal (a rebuild's partition process); users never type it
    children = getattr(command, "commands", None)
    if not children:
        return [(" ".join(path), command)]
    return [leaf for name, c in children.items() for leaf in _leaves(c, [*path, name])]


LEAVES = [leaf for name in sorted(COMMANDS) for leaf in _leaves(load_command(name), [name])]


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[p for p, _ in LEAVES])
def test_every_command_shows_an_example(path: str, command: Any) -> None:
    examples = [line for line in (command.help or "").splitlines() if "Example:" in line]
    assert examples, f"tenantctl {path} --help has no example"
    assert all(f"tenantctl {path}" in line for line in examples)
