"""Crowd replay: both dataset formats, the feeding order, and the real `bird` dataset end to end."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def crowd_datasets() -> Path | None:
    candidates = [os.environ.get("CROWD_DATASETS"), ROOT.parent / "shared" / "datasets" / "crowd", ROOT.parent.parent / "shared" / "datasets" / "crowd"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "bird" / "crowd.txt").exists():
            return Path(candidate)
    return None


def test_reads_both_formats(tmp_path):
    from sapien.quality.replay import ReplayError, read_crowd_dataset

    csv_dir = tmp_path / "csvset"
    csv_dir.mkdir()
    (csv_dir / "answer.csv").write_text("question,worker,answer\nq1,w1,0\nq1,w2,1\nq2,w1,1\nq3,w1,1\n")
    (csv_dir / "truth.csv").write_text("question,truth\nq1,0\nq2,1\n")
    data = read_crowd_dataset(csv_dir)
    assert data.answers == [("q1", "w1", "0"), ("q1", "w2", "1"), ("q2", "w1", "1")]  # q3 has no truth
    assert data.classes == ["0", "1"] and data.truth == {"q1": "0", "q2": "1"}
    txt_dir = tmp_path / "txtset"
    txt_dir.mkdir()
    (txt_dir / "crowd.txt").write_text("1\t1\t2\n1\t2\t1\n2\t1\t3\n")
    (txt_dir / "truth.txt").write_text("1\t2\n2\t3\n")
    data = read_crowd_dataset(txt_dir)
    assert data.classes == ["1", "2", "3"] and len(data.answers) == 3
    with pytest.raises(ReplayError, match="neither"):
        read_crowd_dataset(tmp_path)


def test_feeding_order_puts_each_workers_gold_first():
    from sapien.quality.replay import CrowdDataset, feeding_order

    answers = [(f"q{i}", w, "0") for i in range(10) for w in ("a", "b")]
    data = CrowdDataset("x", answers, {f"q{i}": "0" for i in range(10)})
    order = feeding_order(data, {"q7", "q3"}, seed=1)
    assert sorted(order) == sorted(answers) and order == feeding_order(data, {"q7", "q3"}, seed=1)
    for worker in ("a", "b"):
        mine = [item for item, w, _ in order if w == worker]
        assert set(mine[:2]) == {"q3", "q7"}


def test_replay_cli_rejects_a_folder_without_data(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["quality", "replay", str(tmp_path)])
    assert result.exit_code != 0 and "neither answer.csv" in result.output


def test_rows_a_replay_cannot_use_are_counted_not_fed(tmp_path):
    from sapien.quality.replay import read_crowd_dataset

    (tmp_path / "answer.csv").write_text(
        "\ufeffquestion,worker,answer\nq1,w1,cat\nq1,w1,dog\nq1,w2\nq2,w1,\nq9,w1,cat\nq2,w2,dog\n", encoding="utf-8"
    )
    (tmp_path / "truth.csv").write_text("question,truth\nq1,cat\nq2,dog\n")
    data = read_crowd_dataset(tmp_path)
    assert data.answers == [("q1", "w1", "cat"), ("q2", "w2", "dog")]  # the first answer of w1 on q1 stands
    assert data.ignored == {"short rows": 2, "items without truth": 1, "repeated answers": 1}


def test_replay_skips_and_reports_rows_it_cannot_read(app, tmp_path):
    """Issue 10: a bad row (not UTF-8, a label longer than a pack takes) is skipped and reported, the replay goes on
    (it used to stop at the first byte that was not UTF-8)."""
    (tmp_path / "crowd.txt").write_bytes(
        b"q1 w1 \xff\xfe\n" + b"q1 w2 1\nq1 w3 1\nq2 w1 0\nq2 w2 0\n" + b"q2 w3 " + b"x" * 65 + b"\n"
    )
    (tmp_path / "truth.txt").write_text("q1 1\nq2 0\n")
    result = app.test_cli_runner().invoke(args=["quality", "replay", str(tmp_path), "--gold-percent", "0", "--labels-per-item", "2"])
    assert result.exit_code == 0, result.output
    assert "2 row(s) skipped: crowd.txt row 1: not UTF-8 text; crowd.txt row 6: the answer is longer than 64 characters" in result.output
    assert "2/2 non-gold items right" in result.output
    (tmp_path / "crowd.txt").write_bytes(b"q1 w1 \xff\xfe\n")
    result = app.test_cli_runner().invoke(args=["quality", "replay", str(tmp_path)])
    assert result.exit_code != 0 and "no answers" in result.output and "not UTF-8 text" in result.output


@pytest.mark.skipif(crowd_datasets() is None, reason="the shared crowd datasets are not on this machine")
def test_replay_bird_beats_dawid_skene_with_fewer_labels(app):
    from sapien.extensions import db
    from sapien.labeling.models import Item, TaskPack

    result = app.test_cli_runner().invoke(args=["quality", "replay", str(crowd_datasets() / "bird")])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    match = re.fullmatch(r"accuracy=(\d\.\d{4}) labels_per_item=(\d+\.\d{2}) ece=(\d\.\d{4}) online_ece=(\d\.\d{4}) items=(\d+) gold=(\d+)", last)
    assert match, last
    accuracy, labels_per_item, items, gold = float(match[1]), float(match[2]), int(match[5]), int(match[6])
    assert float(match[3]) <= 0.05  # the final labels' confidence is calibrated
    assert "final labels: expected calibration error" in result.output and "confidence bin   items  stated  right" in result.output
    assert accuracy >= 0.89  # the published Dawid-Skene figure for bird
    assert 3 <= labels_per_item < 39  # every bird item has 39 answers: adaptive redundancy used fewer
    assert (items, gold) == (108, 5)
    with app.app_context():
        pack = db.session.query(TaskPack).one()
        assert pack.review_rate_percent == 0 and pack.task_type == "text_classification"
        assert pack.labels_per_item == 3  # the default start: no item retires on fewer than three answers
        assert db.session.query(Item).filter_by(pack_id=pack.id, is_gold=True).count() == 5


def test_replay_refuses_a_start_below_one_answer_per_item(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["quality", "replay", str(tmp_path), "--labels-per-item", "0"])
    assert result.exit_code == 2
    assert "--labels-per-item" in result.output and "0 is not in the range x>=1" in result.output


def test_a_row_that_does_not_import_is_skipped_and_reported(app, tmp_path):
    from sapien.extensions import db
    from sapien.labeling.models import Item

    too_long = "n" * 2049
    long_ok = "Weaver-http://www.freebase.com/view/en/" + "w" * 200  # over the old 128-character limit
    rows = [(item, f"w{worker}", "1" if item != "q3" else "0") for item in ("q1", "q2", "q3", long_ok, too_long) for worker in range(3)]
    (tmp_path / "answer.csv").write_text("task,worker,answer\n" + "".join(f"{i},{w},{a}\n" for i, w, a in rows), encoding="utf-8")
    (tmp_path / "truth.csv").write_text("task,truth\n" + "".join(f"{i},{'0' if i == 'q3' else '1'}\n" for i in ("q1", "q2", "q3", long_ok, too_long)))
    result = app.test_cli_runner().invoke(args=["quality", "replay", str(tmp_path), "--gold-percent", "0"])
    assert result.exit_code == 0, result.output
    assert "import problem, item skipped: line 5: The external_id is longer than 2,048 characters." in result.output
    assert "1 item(s) not imported, 3 of their answers skipped" in result.output
    assert "4/4 non-gold items right" in result.output
    with app.app_context():
        assert db.session.query(Item).filter_by(external_id=long_ok).count() == 1
