"""The one CSV writer: every cell a spreadsheet would read as a formula stays text."""

from __future__ import annotations

import csv
import io

from sapien.csv_export import csv_lines


def test_every_formula_start_is_kept_as_text_and_numbers_stay_numbers():
    cells = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK(\"http://evil.example\")", "fine", "a=b", -5, 0.5, None]
    text = "".join(csv_lines(["value"], [[cell] for cell in cells]))
    values = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert values == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "'=HYPERLINK(\"http://evil.example\")", "fine", "a=b", "-5", "0.5", ""]


def test_lines_stream_one_row_at_a_time():
    assert list(csv_lines(["a", "b"], [[1, "x"], [2, "y"]])) == ["a,b\r\n", "1,x\r\n", "2,y\r\n"]
