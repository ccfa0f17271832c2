"""Verified results and the quality report of a client's campaign.

Results are read with a keyset cursor (the last item id), so a page costs the same at any depth and a
label verified while a client pages through is never skipped nor repeated. Each record carries the
label's confidence and the number of answers it rests on. Streams (JSONL, CSV) read the database in
batches and never hold the whole result.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from flask_babel import lazy_gettext as _l
from sqlalchemy import Text, cast, func, select

from sapien.api.campaigns import campaign_packs, own_campaign
from sapien.api.errors import ApiError
from sapien.csv_export import csv_lines
from sapien.database import as_utc
from sapien.extensions import db
from sapien.labeling.models import Item
from sapien.quality import exports
from sapien.quality.models import VerifiedLabel
from sapien.quality.results import pack_results

STREAM_BATCH = 5000
CSV_COLUMNS = ("item_id", "external_id", "pack_id", "label", "answer_json", "confidence", "answers", "method", "verified_at")


def encode_cursor(item_id: int) -> str:
    return base64.urlsafe_b64encode(f"i{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("i"):
            raise ValueError
        return int(text[1:])
    except (ValueError, UnicodeDecodeError):
        raise ApiError(_l("This cursor is not one the API gave out."), field="cursor") from None


def _page_query(pack_ids: list[int], after: int | None, limit: int):
    query = (
        select(
            # The answer as its JSON text: a stream copies it as it is, and equal answers are parsed once.
            VerifiedLabel.item_id, Item.external_id, VerifiedLabel.pack_id, cast(VerifiedLabel.answer, Text), VerifiedLabel.confidence,
            VerifiedLabel.labels_used, VerifiedLabel.method, VerifiedLabel.verified_at,
        )
        .join(Item, Item.id == VerifiedLabel.item_id)
        .where(VerifiedLabel.pack_id.in_(pack_ids))
        .order_by(VerifiedLabel.item_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(VerifiedLabel.item_id > after)
    return query


class _Answers(dict):
    """JSON text → (answer, flattened label), parsed once per distinct answer (a class label repeats)."""

    def __missing__(self, text: str) -> tuple[dict, str]:
        answer = json.loads(text) if text else {}
        self[text] = value = (answer, exports._flat_answer(answer or {}))
        return value


def _record(row, answers_seen: _Answers) -> dict:
    item_id, external_id, pack_id, answer_text, confidence, answers, method, verified_at = row
    answer, label = answers_seen[answer_text]
    return {
        "item_id": item_id,
        "external_id": external_id,
        "pack_id": pack_id,
        "label": label,
        "answer": answer,
        "confidence": confidence,
        "answers": answers,
        "method": method,
        "verified_at": as_utc(verified_at).isoformat(),
    }


@dataclass
class ResultsPage:
    records: list[dict]
    next_cursor: str | None


def results_page(organization_id: int, campaign_id: int, *, cursor: str | None, limit: int) -> ResultsPage:
    campaign = own_campaign(organization_id, campaign_id)
    pack_ids = [pack.id for pack in campaign_packs(campaign.id)]
    after = decode_cursor(cursor)
    rows = db.session.execute(_page_query(pack_ids, after, limit + 1)).all() if pack_ids else []
    more = len(rows) > limit
    seen = _Answers()
    records = [_record(row, seen) for row in rows[:limit]]
    return ResultsPage(records, encode_cursor(records[-1]["item_id"]) if more and records else None)


def stream_rows(organization_id: int, campaign_id: int, *, cursor: str | None, limit: int | None) -> Iterator[list]:
    """Every verified label after the cursor (up to `limit`), in batches of rows read by keyset."""
    campaign = own_campaign(organization_id, campaign_id)
    pack_ids = [pack.id for pack in campaign_packs(campaign.id)]
    after = decode_cursor(cursor)
    return _stream(pack_ids, after, limit)


def _stream(pack_ids: list[int], after: int | None, limit: int | None) -> Iterator[list]:
    """Batches of rows from one server-side cursor (Core rows, no ORM loading), so a stream writes a batch at a time."""
    if not pack_ids:
        return
    query = _page_query(pack_ids, after, limit) if limit is not None else _page_query(pack_ids, after, 0).limit(None)
    result = db.session.connection().execution_options(yield_per=STREAM_BATCH).execute(query)
    yield from result.partitions()


def as_jsonl(batches: Iterator[list]) -> Iterator[str]:
    """One JSON object per line, the same fields as a JSON page; written by hand around the stored
    answer's own JSON text (the stream's hot loop: no dict is built per row)."""
    text = json.JSONEncoder(ensure_ascii=False).encode
    seen = _Answers()
    for batch in batches:
        lines = []
        for item_id, external_id, pack_id, answer_text, confidence, answers, method, verified_at in batch:
            label = seen[answer_text][1]
            lines.append(
                f'{{"item_id": {item_id}, "external_id": {text(external_id)}, "pack_id": {pack_id}, "label": {text(label)}, '
                f'"answer": {answer_text or "{}"}, "confidence": {confidence!r}, "answers": {answers}, "method": {text(method)}, '
                f'"verified_at": "{as_utc(verified_at).isoformat()}"}}\n'
            )
        yield "".join(lines)


def as_csv(batches: Iterator[list]) -> Iterator[str]:
    seen = _Answers()
    records = (_record(row, seen) for batch in batches for row in batch)
    rows = (
        (r["item_id"], r["external_id"], r["pack_id"], r["label"], json.dumps(r["answer"], ensure_ascii=False, sort_keys=True), r["confidence"],
         r["answers"], r["method"], r["verified_at"])
        for r in records
    )
    lines = csv_lines(CSV_COLUMNS, rows)
    while True:  # a write per batch, not per line
        chunk = "".join(islice(lines, STREAM_BATCH))
        if not chunk:
            return
        yield chunk


def coco(organization_id: int, campaign_id: int, pack_id: int | None) -> Iterator[str]:
    """COCO JSON of a bounding-box pack of the campaign (quality's exporter)."""
    campaign = own_campaign(organization_id, campaign_id)
    boxes = [pack for pack in campaign_packs(campaign.id) if pack.task_type == "bounding_boxes" and (pack_id is None or pack.id == pack_id)]
    if not boxes:
        raise ApiError(_l("COCO is for bounding-box packs, and this campaign has none."), field="format")
    return exports.export_coco(boxes[0].id)


# --- the quality report ---------------------------------------------------------------------------

CONFIDENCE_BUCKETS = 10


def quality_report(organization_id: int, campaign_id: int) -> dict:
    """Per pack: agreement (Krippendorff's alpha for classes, else the share of agreeing answer pairs),
    gold accuracy over every gold answer, and how the verified labels' confidences spread (ten buckets)."""
    campaign = own_campaign(organization_id, campaign_id)
    reports = []
    for pack in campaign_packs(campaign.id):
        results = pack_results(pack.id)
        gold_correct = sum(member.gold_correct for member in results.members)
        gold_total = sum(member.gold_total for member in results.members)
        bucket = func.least(func.floor(VerifiedLabel.confidence * CONFIDENCE_BUCKETS), CONFIDENCE_BUCKETS - 1)
        counts = dict(db.session.execute(
            select(bucket, func.count()).where(VerifiedLabel.pack_id == pack.id).group_by(bucket)
        ).all()) if db.engine.dialect.name == "postgresql" else _buckets_in_python(pack.id)
        distribution = [
            {"from_": round(i / CONFIDENCE_BUCKETS, 2), "to": round((i + 1) / CONFIDENCE_BUCKETS, 2), "labels": int(counts.get(i, 0))}
            for i in range(CONFIDENCE_BUCKETS)
        ]
        reports.append({
            "pack_id": pack.id,
            "name": pack.name,
            "agreement": results.alpha,
            "agreement_kind": results.alpha_kind,
            "gold_accuracy": gold_correct / gold_total if gold_total else None,
            "gold_answers": gold_total,
            "verified": results.items_verified,
            "mean_confidence": results.mean_confidence,
            "labels_per_item": results.labels_per_verified_item,
            "confidence_distribution": distribution,
        })
    return {"campaign_id": campaign.id, "packs": reports}


def _buckets_in_python(pack_id: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for (confidence,) in db.session.execute(select(VerifiedLabel.confidence).where(VerifiedLabel.pack_id == pack_id)):
        index = min(int(confidence * CONFIDENCE_BUCKETS), CONFIDENCE_BUCKETS - 1)
        counts[index] = counts.get(index, 0) + 1
    return counts

