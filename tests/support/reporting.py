"""Figures that reliability tests print for docs/reliability.md."""

from __future__ import annotations

import sys


def report(test_id: str, **figures: object) -> None:
    """Print one line of figures (shown with `pytest -s`, and in CI logs on failure)."""
    shown = " ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"[{test_id}] {shown}", file=sys.stderr)
