"""Fixtures for labeling tests: users, campaigns and packs with items, made through the service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
_names = count(1)


@pytest.fixture
def ctx(app):
    """An app context with a (signed-out) request context, so translated messages can be read."""
    with app.test_request_context():
        yield app


def make_user(username: str | None = None, role: str = "member") -> int:
    from sapien.accounts import service as accounts

    username = username or f"user{next(_names)}"
    user = accounts.sign_up(
        accounts.SignUp(username=username, email=f"{username}@example.org", password="correct horse battery"), now=NOW, role=role
    )
    return user.id


def open_pack(pack):
    """Publish a fixture pack the way a moderator would; a pack with nothing to label (the tests of
    gold-only or empty packs) is opened directly, as packs made before drafts existed are."""
    from sqlalchemy import update

    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.labeling import errors, packs
    from sapien.labeling.models import TaskPack

    try:
        return packs.publish_pack(pack.id, now=NOW)
    except errors.InvalidSettings:
        with unit_of_work():
            db.session.execute(update(TaskPack).where(TaskPack.id == pack.id).values(status="open"))
        return db.session.get(TaskPack, pack.id)


def write_items(folder: Path, rows: list[dict], name: str = "items.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def make_pack(tmp_path: Path, *, kind: str = "enterprise", items: int = 5, gold: int = 0, exam: int = 0, partner_token: str = "",
              **settings):
    """A text-classification pack (unless settings say otherwise) with `items` ordinary items, `gold`
    gold items and `exam` exam items, imported from a JSONL file."""
    from sapien.labeling import imports, packs

    campaign = packs.create_campaign(name=f"Campaign {next(_names)}", kind=kind, partner_token=partner_token, actor_id=None, now=NOW)
    base = {
        "name": "Sentiment",
        "slug": f"pack-{next(_names)}",
        "task_type": "text_classification",
        "label_options": ["pos", "neg"],
        "labels_per_item": 2,
        "gold_rate_percent": 0,
        "review_rate_percent": 0,
    }
    if kind == "community":
        base["reward_points"] = 0
    pack = packs.create_pack(campaign.id, {**base, **settings}, actor_id=None, now=NOW)
    rows = [{"external_id": f"i{n}", "text": f"Item number {n} is nice."} for n in range(items)]
    rows += [{"external_id": f"g{n}", "text": f"Gold {n} is great.", "gold": {"labels": ["pos"]}, "explanation": "Great is positive."}
             for n in range(gold)]
    rows += [{"external_id": f"e{n}", "text": f"Exam {n} is awful.", "gold": {"labels": ["neg"]}, "exam": True} for n in range(exam)]
    if rows:
        report = imports.import_items(pack.id, write_items(tmp_path / pack.slug, rows), media_dir=None, now=NOW)
        assert not report.problems, report.problems
    return open_pack(pack)


def png_bytes(width: int = 64, height: int = 48, color=(200, 30, 30), fmt: str = "PNG") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def make_media_pack(tmp_path: Path, task_type: str = "bounding_boxes", *, labels=("cell",), rows=None, files=None, **settings):
    """An image or audio pack with media files written under tmp_path/<slug>/media; returns (pack, report)."""
    from sapien.labeling import imports, packs

    campaign = packs.create_campaign(name=f"Campaign {next(_names)}", kind="enterprise", actor_id=None, now=NOW)
    base = {"name": "Media pack", "slug": f"media-{next(_names)}", "task_type": task_type, "label_options": list(labels),
            "labels_per_item": 1, "gold_rate_percent": 0, "review_rate_percent": 0}
    pack = packs.create_pack(campaign.id, {**base, **settings}, actor_id=None, now=NOW)
    folder = tmp_path / pack.slug
    (folder / "media").mkdir(parents=True, exist_ok=True)
    if files is None:
        files = {"media/a.png": png_bytes()} if task_type != "audio_transcription" else {"media/a.wav": wav_bytes()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    if rows is None:
        rows = [{"external_id": "m1", "media": next(iter(files)), "alt": "a red rectangle"}]
    report = imports.import_items(pack.id, write_items(folder, rows), media_dir=folder, now=NOW)
    return open_pack(pack), report
