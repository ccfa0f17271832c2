"""`make bench BENCH=...` reruns some benchmarks and keeps the other rows of docs/benchmarks.md."""

from bench.__main__ import HEADER, figure_row, merged_rows, render
from bench.harness import Figure

EARLIER = """# Benchmarks

Written by `make bench` on 2026-12-01 10:00 UTC — x86_64, 2 cores, Python 3.11.7. Every figure stands beside its ceiling.

| benchmark | figure | value | ceiling (same run) | goal | met |
|---|---|---|---|---|---|
| Dashboard | requests/s | 300 req/s | 2000 | >= 50% | **no** |
| Quality | aggregation | 27.84 s | 0.13 s | < 10 s | **no** |
| Replay bird | accuracy | 0.91  | 0.89 | >= 0.89 | yes |
"""


def test_a_partial_run_replaces_its_rows_in_place_and_dates_the_rows_it_kept(tmp_path):
    document = tmp_path / "benchmarks.md"
    document.write_text(EARLIER)
    rerun = {
        "Quality": [figure_row(Figure("Quality", "aggregation", 7.1, "s", "0.13 s", "< 10 s", True), "2026-12-02 06:00")],
        "Replay rte": [figure_row(Figure("Replay rte", "accuracy", 0.93, "", "0.929", ">= 0.929", True), "2026-12-02 06:10")],
    }

    rows = merged_rows(document, rerun)

    assert [row.split("|")[1].strip() for row in rows] == ["Dashboard", "Quality", "Replay bird", "Replay rte"]
    assert rows[0].endswith("| 2026-12-01 10:00 |")  # kept, dated by the run that measured it
    assert "| 7.1 s |" in rows[1] and "27.84" not in "".join(rows)
    assert rows[1].endswith("| yes | 2026-12-02 06:00 |")
    page = render(rows, [], partial=True)
    assert HEADER in page and "some benchmarks rerun" in page


def test_a_first_partial_run_without_a_document_writes_only_its_rows(tmp_path):
    rows = merged_rows(tmp_path / "missing.md", {"Quality": ["| Quality | aggregation | 7.1 s | | | | 2026-12-02 06:00 |"]})
    assert rows == ["| Quality | aggregation | 7.1 s | | | | 2026-12-02 06:00 |"]
