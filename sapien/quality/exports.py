"""Exports of verified labels: JSONL, CSV and COCO."""

from __future__ import annotations

import json

from sqlalchemy import select

from sapien.csv_export import csv_lines
from sapien.database import as_utc
from sapien.extensions import db
from sapien.labeling.models import Item, Media, TaskPack
from sapien.quality.models import VerifiedLabel


def _export_stream(pack_id: int):
    return db.session.execute(
        select(VerifiedLabel, Item.external_id, Item.media_id)
        .join(Item, Item.id == VerifiedLabel.item_id)
        .where(VerifiedLabel.pack_id == pack_id)
        .order_by(VerifiedLabel.item_id)
        .execution_options(yield_per=1000)
    )


def export_records(pack_id: int):
    """One dict per verified label, streamed from the database (never all in memory)."""
    for label, external_id, _media_id in _export_stream(pack_id):
        yield {
            "item_id": label.item_id,
            "external_id": external_id,
            "answer": label.answer,
            "confidence": label.confidence,
            "method": label.method,
            "labels_used": label.labels_used,
            "contributor_ids": list(label.contributor_ids or []),
            "submission_ids": list(label.submission_ids or []),
            "review_ids": list(label.review_ids or []),
            "verified_at": as_utc(label.verified_at).isoformat(),
            # A moderator's override (method "moderator_override"): who and why; empty otherwise.
            "overridden_by": label.overridden_by,
            "override_reason": label.override_reason or "",
        }


def export_jsonl(pack_id: int):
    for record in export_records(pack_id):
        yield json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


CSV_COLUMNS = (
    "item_id", "external_id", "answer", "answer_json", "confidence", "method", "labels_used", "contributor_ids", "submission_ids", "review_ids",
    "verified_at", "overridden_by", "override_reason",
)


def _flat_answer(answer: dict) -> str:
    if "labels" in answer:
        return "|".join(answer["labels"])
    if "text" in answer:
        return answer["text"]
    return f"{len(answer.get('boxes') or [])} boxes"


def export_csv(pack_id: int):
    """The verified labels as CSV (`sapien.csv_export`: formulas are kept as text), streamed."""
    rows = (
        (
            record["item_id"],
            record["external_id"],
            _flat_answer(record["answer"]),
            json.dumps(record["answer"], ensure_ascii=False, sort_keys=True),
            record["confidence"],
            record["method"],
            record["labels_used"],
            " ".join(map(str, record["contributor_ids"])),
            " ".join(map(str, record["submission_ids"])),
            " ".join(map(str, record["review_ids"])),
            record["verified_at"],
            record["overridden_by"],
            record["override_reason"],
        )
        for record in export_records(pack_id)
    )
    return csv_lines(CSV_COLUMNS, rows)


def export_coco(pack_id: int):
    """COCO object-detection JSON for a boxes pack: images (with each label's confidence and
    provenance under "sapien"), annotations, categories. Written in pieces as it streams."""

    pack = db.session.get(TaskPack, pack_id)
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(pack.label_options or [])]
    category_of = {c["name"]: c["id"] for c in categories}
    yield '{"info": ' + json.dumps({"description": pack.name, "version": "1.0"}) + ', "categories": ' + json.dumps(categories) + ', "images": ['
    first = True
    media_sizes: dict[int, tuple[int | None, int | None, str]] = {}
    for label, external_id, media_id in _export_stream(pack_id):
        if media_id is not None and media_id not in media_sizes:
            media = db.session.get(Media, media_id)
            media_sizes[media_id] = (media.width, media.height, media.path) if media else (None, None, "")
        width, height, path = media_sizes.get(media_id, (None, None, ""))
        image = {
            "id": label.item_id,
            "file_name": path or external_id,
            "width": width,
            "height": height,
            "sapien": {
                "external_id": external_id,
                "confidence": label.confidence,
                "method": label.method,
                "labels_used": label.labels_used,
                "contributor_ids": list(label.contributor_ids or []),
                "submission_ids": list(label.submission_ids or []),
                "review_ids": list(label.review_ids or []),
                "overridden_by": label.overridden_by,
                "override_reason": label.override_reason or "",
            },
        }
        yield ("" if first else ", ") + json.dumps(image)
        first = False
    yield '], "annotations": ['
    first = True
    annotation_id = 0
    for label, _external_id, _media_id in _export_stream(pack_id):
        for box in (label.answer or {}).get("boxes") or []:
            annotation_id += 1
            annotation = {
                "id": annotation_id,
                "image_id": label.item_id,
                "category_id": category_of.get(box.get("label"), 1 if categories else 0),
                "bbox": [box["x"], box["y"], box["w"], box["h"]],
                "area": box["w"] * box["h"],
                "iscrowd": 0,
                "score": label.confidence,
            }
            yield ("" if first else ", ") + json.dumps(annotation)
            first = False
    yield "]}\n"
