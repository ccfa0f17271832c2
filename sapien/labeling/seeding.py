"""Demo packs and demo history for `flask seed-demo`, through the real import and submit paths."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from sapien.extensions import db
from sapien.labeling.demo_content import write_demo_packs
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


# --- the lease sweep (a job that runs every minute once a worker started it) ---------------------

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
