"""Importing items into a pack from a CSV/JSONL file or a pack folder; bad rows are reported by line."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sapien.database import unit_of_work
from sapien.errors import DomainError
from sapien.labeling import media as media_files
from sapien.labeling.answers import validate_answer
from sapien.labeling.errors import InvalidAnswer, LabelingError, LabelingNotFound
from sapien.labeling.models import (
    MAX_EXTERNAL_ID,
    Item,
    Media,
    TaskPack,
)
from sapien.labeling.packs import MAX_ITEM_TEXT, TEXT_TYPES, as_bool, create_campaign, create_pack, publish_pack
from sapien.labeling.plain_answers import parse_plain_answer


@dataclass
class ImportProblem:
    line: int
    message: str


@dataclass
class ImportReport:
    imported: int = 0
    gold: int = 0
    exam: int = 0
    media_stored: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.problems)


class RowProblem(Exception):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


NUL_PROBLEM = _l("This row contains the NUL character, which no field can hold.")


def _holds_nul(value) -> bool:
    """Does a parsed row hold a NUL character anywhere (PostgreSQL text cannot store one)?"""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


NOT_UTF8_PROBLEM = _l("This row is not UTF-8 text.")


def _holds_bad_bytes(value) -> bool:
    """Bytes that are not UTF-8 were decoded as lone surrogates (`surrogateescape`): only that row is bad."""
    if isinstance(value, str):
        return any("\udc80" <= character <= "\udcff" for character in value)
    if isinstance(value, dict):
        return any(_holds_bad_bytes(key) or _holds_bad_bytes(item) for key, item in value.items())
    return False


def _read_rows(path: Path) -> list[tuple[int, dict | None, str | None]]:
    """(line number, row or None, problem) for each record of a .jsonl or .csv items file.

    A bad record (not JSON, not valid CSV, not UTF-8, a NUL) is one problem on its line; reading goes on.
    """
    try:
        content = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    except OSError:
        raise LabelingError(_l("The items file could not be read.")) from None
    suffix = path.suffix.lower()
    rows: list[tuple[int, dict | None, str | None]] = []
    if suffix in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            if _holds_bad_bytes(line):
                rows.append((number, None, str(NOT_UTF8_PROBLEM)))
                continue
            try:
                value = json.loads(line)
            except ValueError:
                rows.append((number, None, str(_l("This line is not valid JSON."))))
                continue
            if not isinstance(value, dict):
                rows.append((number, None, str(_l("Each line must be a JSON object."))))
                continue
            rows.append((number, None, str(NUL_PROBLEM)) if _holds_nul(value) else (number, value, None))
        return rows
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(content, newline=""))
        try:
            fieldnames = reader.fieldnames
        except csv.Error:
            fieldnames = None
        if fieldnames and any(_holds_bad_bytes(name) for name in fieldnames):
            raise LabelingError(_l("The items file is not UTF-8 text."))
        if not fieldnames or "external_id" not in [name.strip() for name in fieldnames]:
            raise LabelingError(_l("The CSV file needs a header row with at least an external_id column."))
        start = 2
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                # The reader picks up again at the next line: one bad row never loses the rows after it.
                rows.append((start, None, str(_l("This row is not valid CSV (%(error)s).", error=str(error)))))
                start = max(start + 1, reader.line_num + 1)
                continue
            if None in record:
                rows.append((start, None, str(_l("This row has more fields than the header."))))
            else:
                clean = {key.strip(): value for key, value in record.items() if key}
                if any(value is None for value in clean.values()):
                    rows.append((start, None, str(_l("This row has fewer fields than the header."))))
                elif _holds_bad_bytes(clean):
                    rows.append((start, None, str(NOT_UTF8_PROBLEM)))
                elif _holds_nul(clean):
                    rows.append((start, None, str(NUL_PROBLEM)))
                elif any((value or "").strip() for value in clean.values()):
                    rows.append((start, clean, None))
            start = reader.line_num + 1
        return rows
    raise LabelingError(_l("Items files are .jsonl or .csv."))


def _row_text(row: dict, key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)):
        raise RowProblem(_l("The %(column)s field must be text.", column=key))
    return str(value)


def _resolve_media(name: str, media_dir: Path | None, by_basename: bool) -> Path:
    if media_dir is None:
        raise RowProblem(_l("This row names a media file, but no media folder was given."))
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise RowProblem(_l("Media paths are relative to the pack folder: %(name)s is not.", name=name))
    root = media_dir.resolve()
    candidate = (root / relative).resolve()
    if by_basename and not candidate.is_file():
        candidate = (root / relative.name).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        raise RowProblem(_l("The media file %(name)s is missing.", name=name))
    return candidate


def import_items(pack_id: int, path: Path, *, media_dir: Path | None, now: datetime, by_basename: bool = False) -> ImportReport:
    """Import items from a .jsonl or .csv file (media files under `media_dir`).

    Each row is checked on its own: a bad row is reported with its line number and skipped; a good
    row's media and item are written together in one savepoint, so no item is ever half-imported.
    `by_basename` matches media by file name alone (files uploaded from a browser lose their folders).
    """
    path = Path(path)
    report = ImportReport()
    rows = _read_rows(path)
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id)
        if pack is None:
            raise LabelingNotFound(_l("That pack does not exist."))
        seen = set(session.scalars(select(Item.external_id).where(Item.pack_id == pack.id)))
        media_by_sha = {m.sha256: m for m in session.scalars(select(Media).where(Media.pack_id == pack.id))}
        for line, row, problem in rows:
            if problem is not None:
                report.problems.append(ImportProblem(line, problem))
                continue
            try:
                _import_row(session, pack, row, media_dir, by_basename, seen, media_by_sha, report, now)
            except (RowProblem, DomainError) as error:
                report.problems.append(ImportProblem(line, str(error.message)))
    return report


def _import_row(session, pack: TaskPack, row: dict, media_dir, by_basename, seen: set, media_by_sha: dict, report, now) -> None:
    external_id = _row_text(row, "external_id").strip()
    if not external_id:
        raise RowProblem(_l("The external_id is missing."))
    if len(external_id) > MAX_EXTERNAL_ID:
        raise RowProblem(_l("The external_id is longer than 2,048 characters."))
    if external_id in seen:
        raise RowProblem(_l("The external_id “%(id)s” is already in this pack.", id=external_id[:40]))
    payload: dict = {}
    info = data = None
    if pack.task_type in TEXT_TYPES:
        text = _row_text(row, "text").strip()
        if not text:
            raise RowProblem(_l("The text is missing."))
        if len(text) > MAX_ITEM_TEXT:
            raise RowProblem(_l("The text is longer than 20,000 characters."))
        payload["text"] = text
    else:
        name = _row_text(row, "media").strip()
        if not name:
            raise RowProblem(_l("The media file is missing."))
        file_path = _resolve_media(name, media_dir, by_basename)
        size = file_path.stat().st_size
        if size > media_files.max_media_bytes():
            raise media_files.too_large(name, size, media_files.max_media_bytes())
        data = file_path.read_bytes()
        info = media_files.inspect(name, data, "audio" if pack.task_type == "audio_transcription" else "image")
        payload["alt"] = _row_text(row, "alt").strip()[:300]
    is_exam = as_bool(row.get("exam") or False)
    gold_raw = row.get("gold")
    gold_answer = None
    if isinstance(gold_raw, str):
        # A plain value as the upload page documents (`plain_answers`), or the canonical JSON.
        try:
            gold_raw = parse_plain_answer(pack.task_type, gold_raw) if gold_raw.strip() else None
        except InvalidAnswer as error:
            raise RowProblem(_l("The gold answer is not valid: %(error)s", error=str(error.message))) from None
    if gold_raw is not None:
        probe = Item(payload=payload)
        probe_media = Media(width=info.width, height=info.height) if info is not None else None
        try:
            gold_answer = validate_answer(pack, probe, gold_raw, media=probe_media)
        except InvalidAnswer as error:
            raise RowProblem(_l("The gold answer is not valid: %(error)s", error=str(error.message))) from None
    if is_exam and gold_answer is None:
        raise RowProblem(_l("Exam items need a gold answer."))
    explanation = _row_text(row, "explanation").strip()[:2000]
    try:
        with session.begin_nested():
            media_row = None
            if info is not None:
                media_row = media_by_sha.get(info.sha256)
                if media_row is None:
                    relative = media_files.store(info, data)
                    media_row = Media(
                        pack_id=pack.id,
                        kind=info.kind,
                        content_type=info.content_type,
                        path=relative,
                        sha256=info.sha256,
                        size_bytes=info.size_bytes,
                        width=info.width,
                        height=info.height,
                        duration_ms=info.duration_ms,
                        created_at=now,
                    )
                    session.add(media_row)
                    session.flush()
                    report.media_stored += 1
            item = Item(
                pack_id=pack.id,
                external_id=external_id,
                payload=payload,
                media_id=media_row.id if media_row is not None else None,
                is_gold=gold_answer is not None,
                is_exam=is_exam,
                gold_answer=gold_answer,
                gold_explanation=explanation,
                status="open",
                labels_target=pack.labels_per_item,
                slots_taken=0,
                created_at=now,
            )
            session.add(item)
            session.flush()
    except IntegrityError:
        raise RowProblem(_l("The external_id “%(id)s” is already in this pack.", id=external_id[:40])) from None
    if media_row is not None:
        media_by_sha[media_row.sha256] = media_row
    seen.add(external_id)
    report.imported += 1
    report.gold += int(gold_answer is not None and not is_exam)
    report.exam += int(is_exam)


PACK_FOLDER_ITEMS = ("items.jsonl", "items.csv")


def read_pack_json(folder: Path) -> dict:
    try:
        spec = json.loads((folder / "pack.json").read_text("utf-8"))
    except FileNotFoundError:
        raise LabelingError(_l("%(folder)s has no pack.json.", folder=str(folder))) from None
    except ValueError:
        raise LabelingError(_l("pack.json is not valid JSON.")) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("pack"), dict):
        raise LabelingError(_l("pack.json needs a \"pack\" object."))
    return spec


def import_pack_folder(folder: Path, *, actor_id: int | None, now: datetime, publish: bool = True) -> tuple[TaskPack, ImportReport]:
    """Create the campaign and pack a folder describes (pack.json) and import its items and media.

    A folder is a whole pack, so it is published once its items are in (`publish=False` keeps it a
    draft to look over first); a folder whose rows were all refused leaves a draft, never a live empty pack.
    """
    folder = Path(folder)
    spec = read_pack_json(folder)
    items = next((folder / name for name in PACK_FOLDER_ITEMS if (folder / name).is_file()), None)
    if items is None:
        raise LabelingError(_l("%(folder)s has no items.jsonl or items.csv.", folder=str(folder)))
    campaign_spec = spec.get("campaign") or {}
    if not isinstance(campaign_spec, dict):
        raise LabelingError(_l("pack.json's \"campaign\" must be an object."))
    with unit_of_work():
        campaign = create_campaign(
            name=str(campaign_spec.get("name") or spec["pack"].get("name") or folder.name),
            kind=str(campaign_spec.get("kind") or "enterprise"),
            description=str(campaign_spec.get("description") or ""),
            client_name=str(campaign_spec.get("client_name") or ""),
            partner_token=str(campaign_spec.get("partner_token") or ""),
            actor_id=actor_id,
            now=now,
        )
        pack = create_pack(campaign.id, spec["pack"], actor_id=actor_id, now=now)
        report = import_items(pack.id, items, media_dir=folder, now=now)
        if publish and report.imported > report.gold + report.exam:
            pack = publish_pack(pack.id, now=now)
    return pack, report
