"""Run every benchmark and write one Markdown table of figures against targets.

    python -m bench.run_all                  # every benchmark's --quick mode
    python -m bench.run_all --full           # the full sizes (about 15 minutes)
    python -m bench.run_all --out results.md

Each benchmark runs in its own process (its own servers on free ports); their
tables go to stderr as they finish, the summary to stdout (or --out).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Verdict, summary

BENCHMARKS = [
    "p1_propagation", "p2_rebuild", "p3_sdk_read", "p4_dispatch",
    "p5_fairness", "p6_commands", "p7_scale", "p8_domain_append",
    "p9_domain_rebuild", "p10_cli",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="full sizes instead of --quick")
    parser.add_argument("--out", type=Path, help="write the Markdown here instead of stdout")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    options = parser.parse_args()
    verdicts: list[Verdict] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in options.only or BENCHMARKS:
            out = Path(tmp) / f"{name}.json"
            args = [sys.executable, "-m", f"bench.{name}", "--json", str(out)]
            if not options.full:
                args.append("--quick")
            print(f"== {name} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            done = subprocess.run(args, stdout=sys.stderr)
            took = time.monotonic() - started
            if done.returncode != 0 or not out.exists():
                failed.append(name)
                print(f"== {name} failed (exit {done.returncode})", file=sys.stderr)
                continue
            verdicts += [Verdict(**v) for v in json.loads(out.read_text())]
            print(f"== {name} done in {took:.0f}s", file=sys.stderr, flush=True)
    mode = "full" if options.full else "quick"
    text = f"Benchmarks ({mode}), {time.strftime('%Y-%m-%d')}\n\n{summary(verdicts)}\n"
    if failed:
        text += f"\nFailed to run: {', '.join(failed)}\n"
    if options.out is not None:
        options.out.write_text(text)
    else:
        print(text)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
