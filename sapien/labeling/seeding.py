"""Demo packs and demo history for `flask seed-demo`, through the real import and submit paths."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from sapien.extensions import db
from sapien.labeling import demo_boxes, demo_content
from sapien.labeling.demo_content import DemoPack
from sapien.labeling.errors import LabelingError
from sapien.labeling.imports import ImportReport, import_pack_folder, read_pack_json
from sapien.labeling.leases import lease_next_item
from sapien.labeling.models import (
    Item,
    TaskPack,
)
from sapien.labeling.packs import CLASSIFICATION_TYPES, get_pack_by_slug
from sapien.labeling.submissions import submit_answer


def seed_demo_packs(now: datetime, *, actor_id: int | None = None, out_dir: Path | None = None) -> list[tuple[TaskPack, ImportReport]]:
    """Write the demo pack folders and import each whose slug is not there yet (idempotent)."""

    imported = []
    with tempfile.TemporaryDirectory(prefix="sapien-demo-packs-") as scratch:
        folders = write_demo_packs(Path(out_dir or scratch))
        for folder in folders:
            slug = str(read_pack_json(folder)["pack"].get("slug", ""))
            if slug and get_pack_by_slug(slug) is not None:
                continue
            imported.append(import_pack_folder(folder, actor_id=actor_id, now=now))
    return imported


def seed_demo_history(user_ids: list[int], now: datetime, per_pack: int = 3) -> int:
    """A few answered items per text pack for the demo accounts, through the real lease/submit path
    (gold items answered right, others with a plausible answer). Returns how many were submitted."""
    packs = list(db.session.scalars(
        select(TaskPack).where(TaskPack.status == "open", TaskPack.task_type.in_((*CLASSIFICATION_TYPES, "text_cleaning")),
                               TaskPack.exam_required.is_(False), TaskPack.min_level <= 1, TaskPack.min_reputation <= 0,
                               TaskPack.min_stake <= 0).order_by(TaskPack.id)
    ))
    done = 0
    for offset, user_id in enumerate(user_ids):
        for pack in packs:
            for number in range(per_pack):
                moment = now - timedelta(hours=2 + offset, minutes=10 * number)
                try:
                    lease = lease_next_item(user_id, pack.id, moment)
                except LabelingError:
                    break
                item = db.session.get(Item, lease.item_id)
                if item.gold_answer is not None:
                    answer = item.gold_answer
                elif pack.task_type == "text_cleaning":
                    answer = {"text": item.payload.get("text", "")}
                else:
                    answer = {"labels": [pack.label_options[(item.id + offset) % len(pack.label_options)]]}
                submit_answer(user_id, lease.id, answer, now=moment + timedelta(seconds=20))
                done += 1
    return done


def write_demo_packs(out_dir: Path) -> list[Path]:
    """Write one import folder per demo pack under `out_dir` and return the folders, in a stable order.

    The transcription pack needs the `espeak-ng` program; without it that pack is left out (with a warning).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    builders = [
        demo_content.sentiment_pack, demo_content.headlines_pack, demo_content.typos_pack, demo_content.digits_pack,
        demo_boxes.coins_pack, demo_boxes.nuclei_pack, demo_content.speech_pack,
    ]
    folders = []
    for build in builders:
        demo = build()
        if demo is None:
            continue
        folders.append(_write(out_dir / demo.slug, demo))
    return folders


def _write(folder: Path, demo: DemoPack) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    pack = {"campaign": demo.campaign, "pack": {"slug": demo.slug, **demo.pack}}
    (folder / "pack.json").write_text(json.dumps(pack, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [json.dumps(row, ensure_ascii=False, sort_keys=True) for row in demo.rows]
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for relative, content in sorted(demo.media.items()):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder
