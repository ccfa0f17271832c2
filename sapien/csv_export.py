"""The one CSV writer every export uses: streamed a line at a time, and safe to open in a spreadsheet.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read by a
spreadsheet as a formula (``=HYPERLINK(…)`` leaking data, ``@SUM(…)``); such a cell is written with a
leading apostrophe, which keeps it text. Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> object:
    """The value as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """The header, then one CSV line per row (streamed: nothing is built up in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    writer.writerow([safe_cell(name) for name in header])
    yield flush()
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        yield flush()
