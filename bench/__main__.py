"""`python -m bench [module ...]`: run the benchmarks and write docs/benchmarks.md.

With no module named every benchmark runs and the file is rewritten. Naming modules (`make bench
BENCH="bench.quality"`) reruns only those: their rows are replaced and every other row is kept as it was,
each row saying when it was measured, so a long benchmark need not be rerun to refresh a short one.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import ROOT, Figure, python_version

# Each module has `run() -> list[Figure]`.
BENCHMARKS = ["bench.dashboard", "bench.fanout", "bench.leaderboards", "bench.labeling_http", "bench.settlement", "bench.quality", "bench.economy",
              "bench.governance",
              "bench.airdrops", "bench.trust", "bench.chain", "bench.api", "bench.arena"]
DOCUMENT = ROOT / "docs" / "benchmarks.md"
HEADER = "| benchmark | figure | value | ceiling (same run) | goal | met | measured (UTC) |"


def figure_row(figure: Figure, measured: str) -> str:
    met = "" if figure.met is None else ("yes" if figure.met else "**no**")
    return f"| {figure.benchmark} | {figure.figure} | {figure.value:,} {figure.unit} | {figure.ceiling} | {figure.goal} | {met} | {measured} |"


def merged_rows(document: Path, new_rows: dict[str, list[str]]) -> list[str]:
    """The earlier run's table with the rerun benchmarks' rows swapped in where theirs stood (new
    benchmarks at the end). Rows of a file written before rows carried their time get the file's time."""
    lines = document.read_text(encoding="utf-8").splitlines() if document.exists() else []
    written = next((line.split(" on ", 1)[1].split(" UTC", 1)[0] for line in lines if line.startswith("Written by")), "")
    rows: list[str] = []
    pending = dict(new_rows)
    for line in lines:
        if not line.startswith("| ") or line == HEADER:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "benchmark" or set(cells[0]) <= {"-"}:
            continue
        if cells[0] in new_rows:
            rows += pending.pop(cells[0], [])
            continue
        rows.append(f"{line} {written} |" if len(cells) == 6 else line)
    for remaining in pending.values():
        rows += remaining
    return rows


def render(rows: list[str], failures: list[str], *, partial: bool) -> str:
    scope = "some benchmarks rerun, the other rows kept from earlier runs" if partial else "every benchmark"
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({scope}) — {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {python_version()}. Every figure stands beside its ceiling measured in the same run.",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    profiles = sorted(DOCUMENT.parent.glob("profile-*"))
    if profiles:
        lines += ["", "## Profiles", "", "Kept beside this file (`bench.request_cpu --profile`, and py-spy for the flame graphs): "
                  + ", ".join(f"[{path.name}]({path.name})" for path in profiles) + "."]
    if failures:
        lines += ["", "## Benchmarks that did not complete", ""] + [f"- {failure}" for failure in failures]
    return "\n".join(lines) + "\n"


def main(selected: list[str]) -> int:
    unknown = [name for name in selected if name not in BENCHMARKS]
    if unknown:
        print(f"[bench] unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    rows: dict[str, list[str]] = {}
    failures: list[str] = []
    for name in selected or BENCHMARKS:
        print(f"[bench] {name} …", flush=True)
        try:
            figures = importlib.import_module(name).run()
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others
            failures.append(f"`{name}`: {type(error).__name__}: {error}")
            print(f"[bench] {name} failed: {error}", flush=True)
            continue
        measured = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
        for figure in figures:
            rows.setdefault(figure.benchmark, []).append(figure_row(figure, measured))
    table = merged_rows(DOCUMENT, rows) if selected else [row for group in rows.values() for row in group]
    document = render(table, failures, partial=bool(selected))
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(document, encoding="utf-8")
    print(document)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
