"""`python -m bench`: run every benchmark and write docs/benchmarks.md."""

from __future__ import annotations

import importlib
import os
import platform
import sys
from datetime import UTC, datetime

from bench.harness import ROOT, Figure, python_version

# Each module has `run() -> list[Figure]`.
BENCHMARKS = ["bench.dashboard", "bench.fanout", "bench.leaderboards", "bench.labeling_http", "bench.quality"]


def render(figures: list[Figure], failures: list[str]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {python_version()}. Every figure stands beside its ceiling measured in the same run.",
        "",
        "| benchmark | figure | value | ceiling (same run) | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(f"| {f.benchmark} | {f.figure} | {f.value:,} {f.unit} | {f.ceiling} | {f.goal} | {met} |")
    if failures:
        lines += ["", "## Benchmarks that did not complete", ""] + [f"- {failure}" for failure in failures]
    return "\n".join(lines) + "\n"


def main(selected: list[str]) -> int:
    figures: list[Figure] = []
    failures: list[str] = []
    for name in selected or BENCHMARKS:
        print(f"[bench] {name} …", flush=True)
        try:
            figures += importlib.import_module(name).run()
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others
            failures.append(f"`{name}`: {type(error).__name__}: {error}")
            print(f"[bench] {name} failed: {error}", flush=True)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text(render(figures, failures))
    print(render(figures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
