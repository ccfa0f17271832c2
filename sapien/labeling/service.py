"""Labeling rules: campaigns, packs, imports, unlocks, exams, assignment leases, answers and rewards.

Assignment
----------
A member works one item at a time through a *lease* that expires (``TaskPack.lease_minutes``). Each
ordinary item wants ``labels_target`` labels; a lease takes one of its slots with a single conditional
UPDATE (``slots_taken = slots_taken + 1 WHERE slots_taken < labels_target AND status = 'open'``), so
two members racing for the last slot cannot both win. A lease is unique per (item, member): nobody
gets the same item twice, even after their lease ran out. An expired lease or a rejected answer gives
its slot back. Gold items are mixed in at the pack's gold rate; they take no slots (every member may
answer each of them once) and look exactly like ordinary items to the member.

Rewards
-------
``reward = base × difficulty multiplier × streak multiplier``, rounded down, posted to the ledger with
one key per submission and currency (``submission:<id>:points`` …). Enterprise campaigns pay points and
XP, dual-reward campaigns add the partner token (ledger currency ``partner``; the symbol is in the memo),
community campaigns pay XP and record revenue shares. Packs count partner rewards and minimum stakes in
whole tokens (``partner_reward``, ``min_stake``, ``Submission.paid_partner``); the ledger holds them in
base units (10**-18 of a token). Rejecting a paid submission reverses what was
paid, never taking a balance below zero.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, exists, false, func, literal, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from sapien import events
from sapien.database import after_commit, as_utc, dialect_insert, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.labeling import media as media_files
from sapien.labeling.models import (
    CAMPAIGN_KINDS,
    DIFFICULTIES,
    MAX_EXTERNAL_ID,
    TASK_TYPES,
    Campaign,
    ExamAttempt,
    Item,
    Lease,
    Media,
    RevenueShare,
    Submission,
    TaskPack,
)
from sapien.ledger import service as ledger
from sapien.ledger.models import Balance
from sapien.queue import PendingWork, pending_work_source


class LabelingError(DomainError):
    pass


class LabelingNotFound(LabelingError):
    """The object does not exist or belongs to someone else (shown as a 404)."""


class InvalidAnswer(LabelingError):
    pass


class InvalidSettings(LabelingError):
    pass


class NoWorkLeft(LabelingError):
    pass


class PackLocked(LabelingError):
    pass


class DailyCapReached(LabelingError):
    pass


class LeaseExpired(LabelingError):
    pass


class AlreadySubmitted(LabelingError):
    pass


class ExamError(LabelingError):
    pass


DIFFICULTY_MULTIPLIERS = {
    "beginner": Decimal(1),
    "intermediate": Decimal("1.5"),
    "advanced": Decimal(2),
    "expert": Decimal(3),
}
CLASSIFICATION_TYPES = ("text_classification", "image_classification")
TEXT_TYPES = ("text_classification", "text_cleaning")
IMAGE_TYPES = ("image_classification", "bounding_boxes")
MAX_TRANSCRIPT = 5000
MAX_CLEANED_TEXT = 20000
MAX_ITEM_TEXT = 20000
MAX_BOXES = 100
MAX_LABELS = 50
LABEL_MAX_LENGTH = 64
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
TOKEN_UNIT = 10**18


def _day_start(now: datetime) -> datetime:
    now = as_utc(now)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


# --- campaigns and packs --------------------------------------------------------------------------

def create_campaign(
    *, name: str, kind: str, description: str = "", client_name: str = "", partner_token: str = "", actor_id: int | None, now: datetime
) -> Campaign:
    name = (name or "").strip()
    partner_token = (partner_token or "").strip().upper()
    if not 3 <= len(name) <= 120:
        raise InvalidSettings(_l("Campaign names are 3 to 120 characters long."), field="name")
    if kind not in CAMPAIGN_KINDS:
        raise InvalidSettings(_l("Choose enterprise, dual reward or community."), field="kind")
    if kind == "dual" and not re.fullmatch(r"[A-Z0-9]{2,16}", partner_token):
        raise InvalidSettings(_l("A dual-reward campaign needs its partner token's symbol (2 to 16 letters or digits)."), field="partner_token")
    if kind != "dual":
        partner_token = ""
    if len(description or "") > 5000:
        raise InvalidSettings(_l("Descriptions are at most 5,000 characters long."), field="description")
    if len(client_name or "") > 120:
        raise InvalidSettings(_l("Client names are at most 120 characters long."), field="client_name")
    with unit_of_work() as session:
        campaign = Campaign(
            name=name,
            kind=kind,
            description=(description or "").strip(),
            client_name=(client_name or "").strip(),
            partner_token=partner_token,
            status="active",
            created_by=actor_id,
            created_at=now,
        )
        session.add(campaign)
        session.flush()
    return campaign


# name → (type, minimum, maximum) for the integer settings of a pack.
INTEGER_SETTINGS = {
    "reward_points": (0, 100_000),
    "reward_xp": (0, 100_000),
    "partner_reward": (0, 9),
    "revenue_shares": (0, 1_000_000),
    "labels_per_item": (1, 50),
    "max_labels_per_item": (1, 50),
    "gold_rate_percent": (0, 90),
    "review_rate_percent": (0, 100),
    "daily_cap": (1, 100_000),
    "lease_minutes": (1, 24 * 60),
    "estimated_seconds": (1, 3600),
    "min_level": (1, 1000),
    "min_reputation": (0, 1000),
    "min_stake": (0, 1_000_000_000),
    "exam_size": (1, 50),
    "exam_pass_percent": (1, 100),
}
TEXT_SETTINGS = {"name": 120, "slug": 64, "instructions": 20_000}
SETTING_NAMES = {
    *INTEGER_SETTINGS,
    *TEXT_SETTINGS,
    "task_type",
    "multi_label",
    "label_options",
    "examples",
    "difficulty",
    "exam_required",
}
SETTING_DEFAULTS = {
    "multi_label": False,
    "label_options": [],
    "instructions": "",
    "examples": [],
    "difficulty": "beginner",
    "reward_points": 10,
    "reward_xp": 10,
    "partner_reward": 0,
    "revenue_shares": 0,
    "labels_per_item": 3,
    "max_labels_per_item": None,  # defaults to max(5, labels_per_item)
    "gold_rate_percent": 10,
    "review_rate_percent": 10,
    "daily_cap": 200,
    "lease_minutes": 15,
    "estimated_seconds": 20,
    "min_level": 1,
    "min_reputation": 0,
    "min_stake": 0,
    "exam_required": False,
    "exam_size": 5,
    "exam_pass_percent": 80,
}


def _as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    return str(value).strip().lower() in ("1", "true", "yes", "y", "on")


def validate_pack_settings(settings: Mapping, campaign: Campaign) -> dict:
    """Check a pack's settings and fill in defaults; returns the column values."""
    unknown = sorted(set(settings) - SETTING_NAMES)
    if unknown:
        raise InvalidSettings(_l("Unknown pack settings: %(names)s.", names=", ".join(unknown)))
    values = {**SETTING_DEFAULTS, **{key: value for key, value in settings.items() if value is not None}}
    name = str(values.get("name") or "").strip()
    if not 3 <= len(name) <= TEXT_SETTINGS["name"]:
        raise InvalidSettings(_l("Pack names are 3 to 120 characters long."), field="name")
    slug = str(values.get("slug") or "").strip().lower()
    if not SLUG_PATTERN.match(slug):
        raise InvalidSettings(_l("Slugs use lowercase letters, digits and dashes (1 to 64 characters)."), field="slug")
    task_type = values.get("task_type")
    if task_type not in TASK_TYPES:
        raise InvalidSettings(_l("Choose one of the task types."), field="task_type")
    difficulty = values.get("difficulty")
    if difficulty not in DIFFICULTIES:
        raise InvalidSettings(_l("Choose beginner, intermediate, advanced or expert."), field="difficulty")
    instructions = str(values.get("instructions") or "")
    if len(instructions) > TEXT_SETTINGS["instructions"]:
        raise InvalidSettings(_l("Instructions are at most 20,000 characters long."), field="instructions")
    numbers: dict[str, int] = {}
    if values.get("max_labels_per_item") is None:
        values["max_labels_per_item"] = max(5, _int_setting("labels_per_item", values["labels_per_item"]))
    for key, (low, high) in INTEGER_SETTINGS.items():
        number = _int_setting(key, values[key])
        if not low <= number <= high:
            raise InvalidSettings(_l("%(setting)s must be between %(low)s and %(high)s.", setting=key.replace("_", " "), low=low, high=high), field=key)
        numbers[key] = number
    if numbers["max_labels_per_item"] < numbers["labels_per_item"]:
        raise InvalidSettings(_l("The maximum labels per item cannot be below the labels per item."), field="max_labels_per_item")
    multi_label = _as_bool(values["multi_label"]) and task_type in CLASSIFICATION_TYPES
    labels = _label_options(values["label_options"], task_type)
    examples = _examples(values["examples"])
    if campaign.kind != "dual" and numbers["partner_reward"]:
        raise InvalidSettings(_l("Only dual-reward campaigns pay a partner token."), field="partner_reward")
    if campaign.kind != "community" and numbers["revenue_shares"]:
        raise InvalidSettings(_l("Only community campaigns record revenue shares."), field="revenue_shares")
    if campaign.kind == "community" and numbers["reward_points"]:
        raise InvalidSettings(_l("Community campaigns pay no points now: contributors earn revenue shares."), field="reward_points")
    return {
        "name": name,
        "slug": slug,
        "task_type": task_type,
        "multi_label": multi_label,
        "label_options": labels,
        "instructions": instructions.strip(),
        "examples": examples,
        "difficulty": difficulty,
        "exam_required": _as_bool(values["exam_required"]),
        **numbers,
    }


def _int_setting(key: str, value) -> int:
    if isinstance(value, bool):
        raise InvalidSettings(_l("%(setting)s must be a whole number.", setting=key.replace("_", " ")), field=key)
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InvalidSettings(_l("%(setting)s must be a whole number.", setting=key.replace("_", " ")), field=key) from None
    return number


def _label_options(raw, task_type: str) -> list[str]:
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[\n,]", raw)]
    if not isinstance(raw, list):
        raise InvalidSettings(_l("Labels are a list of names."), field="label_options")
    labels: list[str] = []
    for entry in raw:
        label = str(entry).strip()
        if not label:
            continue
        if len(label) > LABEL_MAX_LENGTH:
            raise InvalidSettings(_l("Each label is at most 64 characters long."), field="label_options")
        if label in labels:
            raise InvalidSettings(_l("The label “%(label)s” is listed twice.", label=label), field="label_options")
        labels.append(label)
    if len(labels) > MAX_LABELS:
        raise InvalidSettings(_l("A pack has at most 50 labels."), field="label_options")
    if task_type in CLASSIFICATION_TYPES and len(labels) < 2:
        raise InvalidSettings(_l("Classification packs need at least two labels."), field="label_options")
    if task_type == "bounding_boxes" and not labels:
        raise InvalidSettings(_l("Bounding-box packs need at least one label for the boxes."), field="label_options")
    if task_type not in CLASSIFICATION_TYPES and task_type != "bounding_boxes":
        return []
    return labels


def _examples(raw) -> list[dict]:
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            return []
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidSettings(_l("Examples must be a JSON list of {\"input\", \"answer\", \"why\"} objects."), field="examples") from None
    if not isinstance(raw, list) or len(raw) > 20:
        raise InvalidSettings(_l("Examples are a list of at most 20 worked examples."), field="examples")
    examples = []
    for entry in raw:
        if not isinstance(entry, dict) or not str(entry.get("input", "")).strip():
            raise InvalidSettings(_l("Each example needs an input, an answer and why."), field="examples")
        examples.append({key: str(entry.get(key, ""))[:2000] for key in ("input", "answer", "why")})
    return examples


def create_pack(campaign_id: int, settings: dict, *, actor_id: int | None, now: datetime) -> TaskPack:
    with unit_of_work() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise LabelingNotFound(_l("That campaign does not exist."))
        values = validate_pack_settings(settings, campaign)
        if session.scalar(select(TaskPack.id).where(TaskPack.slug == values["slug"])) is not None:
            raise InvalidSettings(_l("Another pack already uses the slug “%(slug)s”.", slug=values["slug"]), field="slug")
        pack = TaskPack(campaign_id=campaign.id, status="open", created_at=now, **values)
        session.add(pack)
        session.flush()
    return pack


def set_pack_status(pack_id: int, status: str, *, now: datetime) -> TaskPack:
    if status not in ("open", "paused", "closed"):
        raise InvalidSettings(_l("Choose open, paused or closed."))
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id)
        if pack is None:
            raise LabelingNotFound(_l("That pack does not exist."))
        pack.status = status
    return pack


def get_pack(pack_id: int) -> TaskPack | None:
    return db.session.get(TaskPack, pack_id)


def get_pack_by_slug(slug: str) -> TaskPack | None:
    return db.session.scalar(select(TaskPack).where(TaskPack.slug == slug))


def get_lease(lease_id: int) -> Lease | None:
    return db.session.get(Lease, lease_id)


def get_item(item_id: int) -> Item | None:
    return db.session.get(Item, item_id)


def pack_items(pack_id: int) -> list[Item]:
    return list(db.session.scalars(select(Item).where(Item.pack_id == pack_id).order_by(Item.id)))


def get_media(media_id: int | None) -> Media | None:
    return db.session.get(Media, media_id) if media_id else None


def get_campaign(campaign_id: int) -> Campaign | None:
    return db.session.get(Campaign, campaign_id)


def list_campaigns() -> list[tuple[Campaign, list[TaskPack]]]:
    campaigns = list(db.session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())))
    packs: dict[int, list[TaskPack]] = {}
    for pack in db.session.scalars(select(TaskPack).order_by(TaskPack.id)):
        packs.setdefault(pack.campaign_id, []).append(pack)
    return [(campaign, packs.get(campaign.id, [])) for campaign in campaigns]


@dataclass(frozen=True)
class PackCounts:
    items: int = 0
    gold: int = 0
    exam: int = 0
    open_items: int = 0
    submissions: int = 0


def pack_counts(pack_ids: list[int] | None = None) -> dict[int, PackCounts]:
    """Items (ordinary, gold, exam), items still wanting labels, and submissions, per pack."""
    ordinary = and_(Item.is_gold.is_(False))
    query = select(
        Item.pack_id,
        func.sum(case((ordinary, 1), else_=0)),
        func.sum(case((and_(Item.is_gold.is_(True), Item.is_exam.is_(False)), 1), else_=0)),
        func.sum(case((Item.is_exam.is_(True), 1), else_=0)),
        func.sum(case((and_(ordinary, Item.status == "open", Item.slots_taken < Item.labels_target), 1), else_=0)),
    ).group_by(Item.pack_id)
    submissions = select(Submission.pack_id, func.count()).group_by(Submission.pack_id)
    if pack_ids is not None:
        query = query.where(Item.pack_id.in_(pack_ids))
        submissions = submissions.where(Submission.pack_id.in_(pack_ids))
    found = {row[0]: [int(value or 0) for value in row[1:]] for row in db.session.execute(query)}
    submitted = dict(db.session.execute(submissions).tuples().all())
    return {
        pack_id: PackCounts(*found.get(pack_id, [0, 0, 0, 0]), submissions=submitted.get(pack_id, 0))
        for pack_id in set(found) | set(submitted)
    }


# --- answers ------------------------------------------------------------------------------------

def _first(form: Mapping, key: str) -> str | None:
    if hasattr(form, "getlist"):
        values = form.getlist(key)
    else:
        values = form.get(key)
        if values is None:
            return None
        if isinstance(values, str):
            values = [values]
    return values[0] if values else None


def _all(form: Mapping, key: str) -> list[str]:
    if hasattr(form, "getlist"):
        return list(form.getlist(key))
    values = form.get(key) or []
    return [values] if isinstance(values, str) else list(values)


def parse_answer_form(pack: TaskPack, item: Item, form: Mapping) -> dict:
    """Turn the widget's form fields into the canonical answer shape (not yet validated)."""
    if pack.task_type in CLASSIFICATION_TYPES:
        return {"labels": _all(form, "label")}
    if pack.task_type in ("text_cleaning", "audio_transcription"):
        return {"text": _first(form, "text") or ""}
    raw = _first(form, "boxes")
    if raw is None or not raw.strip():
        return {"boxes": []}
    try:
        boxes = json.loads(raw)
    except ValueError:
        raise InvalidAnswer(_l("The boxes could not be read. Draw them again and resubmit.")) from None
    return {"boxes": boxes}


def _media_of(item: Item, media: Media | None) -> Media | None:
    if media is not None or item.media_id is None:
        return media
    return db.session.get(Media, item.media_id)


def validate_answer(pack: TaskPack, item: Item, answer: dict, *, media: Media | None = None) -> dict:
    """Check an answer against the pack's task type; returns it in canonical form."""
    if not isinstance(answer, dict):
        raise InvalidAnswer(_l("That answer is not in the shape this task needs."))
    task_type = pack.task_type
    if task_type in CLASSIFICATION_TYPES:
        labels = answer.get("labels")
        if set(answer) != {"labels"} or not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise InvalidAnswer(_l("That answer is not in the shape this task needs: choose labels."))
        chosen = sorted({label.strip() for label in labels if label.strip()})
        if not chosen:
            raise InvalidAnswer(_l("Choose a label."))
        outside = [label for label in chosen if label not in pack.label_options]
        if outside:
            raise InvalidAnswer(_l("“%(label)s” is not one of this pack's labels.", label=outside[0][:64]))
        if len(chosen) > 1 and not pack.multi_label:
            raise InvalidAnswer(_l("Choose exactly one label."))
        return {"labels": chosen}
    if task_type in ("text_cleaning", "audio_transcription"):
        text = answer.get("text")
        if set(answer) != {"text"} or not isinstance(text, str):
            raise InvalidAnswer(_l("That answer is not in the shape this task needs: type the text."))
        text = text.replace("\r\n", "\n").strip()
        if task_type == "audio_transcription":
            if not text:
                raise InvalidAnswer(_l("The transcript is empty. Type what you hear."))
            if len(text) > MAX_TRANSCRIPT:
                raise InvalidAnswer(_l("The transcript is too long (at most %(max)s characters).", max=f"{MAX_TRANSCRIPT:,}"))
        else:
            if not text:
                raise InvalidAnswer(_l("The edited passage is empty. Keep the text and fix what is wrong."))
            if len(text) > MAX_CLEANED_TEXT:
                raise InvalidAnswer(_l("The edited passage is too long (at most %(max)s characters).", max=f"{MAX_CLEANED_TEXT:,}"))
        return {"text": text}
    return {"boxes": _validate_boxes(pack, item, answer, media)}


def _validate_boxes(pack: TaskPack, item: Item, answer: dict, media: Media | None) -> list[dict]:
    boxes = answer.get("boxes")
    if set(answer) != {"boxes"} or not isinstance(boxes, list):
        raise InvalidAnswer(_l("That answer is not in the shape this task needs: draw boxes."))
    if len(boxes) > MAX_BOXES:
        raise InvalidAnswer(_l("Too many boxes: at most %(max)s.", max=MAX_BOXES))
    media = _media_of(item, media)
    width = media.width if media is not None else None
    height = media.height if media is not None else None
    only_label = pack.label_options[0] if len(pack.label_options) == 1 else None
    clean = []
    for number, box in enumerate(boxes, start=1):
        if not isinstance(box, dict):
            raise InvalidAnswer(_l("Box %(n)s is not a box.", n=number))
        values = {}
        for key in ("x", "y", "w", "h"):
            value = box.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
                raise InvalidAnswer(_l("Box %(n)s has no valid %(key)s position.", n=number, key=key))
            values[key] = int(round(value))
        if values["w"] <= 0 or values["h"] <= 0:
            raise InvalidAnswer(_l("Box %(n)s has no size: its width and height must be above zero.", n=number))
        if values["x"] < 0 or values["y"] < 0 or (
            width is not None and height is not None and (values["x"] + values["w"] > width or values["y"] + values["h"] > height)
        ):
            raise InvalidAnswer(_l("Box %(n)s goes outside the image.", n=number))
        label = box.get("label")
        if label in (None, "") and only_label is not None:
            label = only_label
        if not isinstance(label, str) or label not in pack.label_options:
            raise InvalidAnswer(_l("Box %(n)s needs one of this pack's labels.", n=number))
        clean.append({**values, "label": label})
    return clean


def text_diff(original: str, edited: str) -> list[tuple[str, str]]:
    """A word-level diff: ("equal" | "insert" | "delete", text) runs, whitespace kept with its words."""
    before = re.findall(r"\s+|[^\s]+", original or "")
    after = re.findall(r"\s+|[^\s]+", edited or "")
    runs: list[tuple[str, str]] = []

    def add(op: str, tokens: list[str]) -> None:
        text = "".join(tokens)
        if not text:
            return
        if runs and runs[-1][0] == op:
            runs[-1] = (op, runs[-1][1] + text)
        else:
            runs.append((op, text))

    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", before[a1:a2])
        else:
            add("delete", before[a1:a2])
            add("insert", after[b1:b2])
    return runs


# --- import ---------------------------------------------------------------------------------------

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


def _read_rows(path: Path) -> list[tuple[int, dict | None, str | None]]:
    """(line number, row or None, problem) for each record of a .jsonl or .csv items file."""
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabelingError(_l("The items file is not UTF-8 text.")) from None
    except OSError:
        raise LabelingError(_l("The items file could not be read.")) from None
    suffix = path.suffix.lower()
    rows: list[tuple[int, dict | None, str | None]] = []
    if suffix in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
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
        if not reader.fieldnames or "external_id" not in [name.strip() for name in reader.fieldnames]:
            raise LabelingError(_l("The CSV file needs a header row with at least an external_id column."))
        start = 2
        try:
            for record in reader:
                if None in record:
                    rows.append((start, None, str(_l("This row has more fields than the header."))))
                else:
                    clean = {key.strip(): value for key, value in record.items() if key}
                    if any(value is None for value in clean.values()):
                        rows.append((start, None, str(_l("This row has fewer fields than the header."))))
                    elif _holds_nul(clean):
                        rows.append((start, None, str(NUL_PROBLEM)))
                    elif any((value or "").strip() for value in clean.values()):
                        rows.append((start, clean, None))
                start = reader.line_num + 1
        except csv.Error as error:
            rows.append((start, None, str(_l("This row is not valid CSV (%(error)s).", error=str(error)))))
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
    is_exam = _as_bool(row.get("exam") or False)
    gold_raw = row.get("gold")
    gold_answer = None
    if isinstance(gold_raw, str):
        gold_raw = gold_raw.strip()
        if gold_raw:
            try:
                gold_raw = json.loads(gold_raw)
            except ValueError:
                raise RowProblem(_l("The gold answer is not valid JSON.")) from None
        else:
            gold_raw = None
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


def import_pack_folder(folder: Path, *, actor_id: int | None, now: datetime) -> tuple[TaskPack, ImportReport]:
    """Create the campaign and pack a folder describes (pack.json) and import its items and media."""
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
    return pack, report


# --- unlocks ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Standing:
    """What a member brings to a pack's unlock requirements."""

    level: int
    reputation: int
    stake: int
    passed_exams: frozenset[int]


def member_standing(user_id: int) -> Standing:
    from sapien.progression.service import level_for_xp
    from sapien.quality.service import reputation_of

    balances = dict(
        db.session.execute(
            select(Balance.currency, Balance.amount).where(Balance.user_id == user_id, Balance.currency.in_(("xp", "stake")))
        ).tuples().all()
    )
    passed = frozenset(
        db.session.scalars(select(ExamAttempt.pack_id).where(ExamAttempt.user_id == user_id, ExamAttempt.passed.is_(True)))
    )
    return Standing(
        level=level_for_xp(balances.get("xp", 0)),
        reputation=int(reputation_of(user_id)),
        stake=int(balances.get("stake", 0)),
        passed_exams=passed,
    )


@dataclass(frozen=True)
class PackAccess:
    unlocked: bool
    reasons: list = field(default_factory=list)
    needs_exam: bool = False  # the only thing missing is the exam


def _tokens(amount: int) -> str:
    return f"{Decimal(amount) / TOKEN_UNIT:,.4f}".rstrip("0").rstrip(".")


def access_for(pack: TaskPack, standing: Standing) -> PackAccess:
    reasons = []
    if pack.status != "open":
        reasons.append(_l("This pack is paused.") if pack.status == "paused" else _l("This pack is closed."))
    if standing.level < pack.min_level:
        reasons.append(_l("Reach level %(needed)s (you are level %(level)s).", needed=pack.min_level, level=standing.level))
    if standing.reputation < pack.min_reputation:
        reasons.append(
            _l("Reach a reputation of %(needed)s (yours is %(reputation)s).", needed=pack.min_reputation, reputation=standing.reputation)
        )
    if standing.stake < pack.min_stake * TOKEN_UNIT:
        reasons.append(
            _l("Stake at least %(needed)s tokens (you have %(stake)s staked).", needed=f"{pack.min_stake:,}", stake=_tokens(standing.stake))
        )
    exam_missing = pack.exam_required and pack.id not in standing.passed_exams
    if exam_missing:
        reasons.append(_l("Pass the pack's qualification exam."))
    return PackAccess(unlocked=not reasons, reasons=reasons, needs_exam=exam_missing and len(reasons) == 1)


def pack_access(user_id: int, pack_id: int, now: datetime) -> PackAccess:
    pack = db.session.get(TaskPack, pack_id)
    if pack is None:
        raise LabelingNotFound(_l("That pack does not exist."))
    return access_for(pack, _standing_for(user_id, pack))


def _standing_for(user_id: int, pack: TaskPack) -> Standing:
    """The member's standing, reading only what this pack's requirements need (the lease hot path)."""
    if pack.min_level <= 1 and pack.min_reputation <= 0 and pack.min_stake <= 0 and not pack.exam_required:
        return Standing(level=1, reputation=0, stake=0, passed_exams=frozenset())
    return member_standing(user_id)


def _check_unlocked(user_id: int, pack: TaskPack) -> None:
    access = access_for(pack, _standing_for(user_id, pack))
    if not access.unlocked:
        raise PackLocked(access.reasons[0])


# --- marketplace ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackCard:
    pack: TaskPack
    campaign: Campaign
    access: PackAccess
    points: int
    xp: int
    partner: int
    shares: int
    remaining: int


MARKET_SORTS = ("reward", "time", "newest")


def rewards_after_difficulty(pack: TaskPack, campaign: Campaign) -> tuple[int, int, int, int]:
    """(points, xp, partner, revenue shares) one accepted label earns before any streak bonus."""
    multiplier = DIFFICULTY_MULTIPLIERS[pack.difficulty]
    points = _floor(pack.reward_points * multiplier) if campaign.kind != "community" else 0
    partner = _floor(pack.partner_reward * multiplier) if campaign.kind == "dual" else 0
    shares = _floor(pack.revenue_shares * multiplier) if campaign.kind == "community" else 0
    return points, _floor(pack.reward_xp * multiplier), partner, shares


def marketplace(user_id: int, *, task_type: str = "", difficulty: str = "", unlocked: str = "", sort: str = "reward") -> list[PackCard]:
    """Open packs of active campaigns, with what each pays and whether the member can do it."""
    query = (
        select(TaskPack, Campaign)
        .join(Campaign, Campaign.id == TaskPack.campaign_id)
        .where(TaskPack.status == "open", Campaign.status == "active")
    )
    if task_type in TASK_TYPES:
        query = query.where(TaskPack.task_type == task_type)
    if difficulty in DIFFICULTIES:
        query = query.where(TaskPack.difficulty == difficulty)
    rows = db.session.execute(query).tuples().all()
    counts = pack_counts([pack.id for pack, _campaign in rows]) if rows else {}
    standing = member_standing(user_id)
    cards = []
    for pack, campaign in rows:
        access = access_for(pack, standing)
        if unlocked == "unlocked" and not access.unlocked:
            continue
        if unlocked == "locked" and access.unlocked:
            continue
        points, xp, partner, shares = rewards_after_difficulty(pack, campaign)
        remaining = counts.get(pack.id, PackCounts()).open_items
        cards.append(PackCard(pack, campaign, access, points, xp, partner, shares, remaining))
    if sort == "time":
        cards.sort(key=lambda card: (card.pack.estimated_seconds, -card.pack.id))
    elif sort == "newest":
        cards.sort(key=lambda card: (as_utc(card.pack.created_at), card.pack.id), reverse=True)
    else:
        cards.sort(key=lambda card: (card.points + card.xp + card.shares, card.pack.id), reverse=True)
    # Packs the member can do first; locked ones after, each group in the chosen order.
    cards.sort(key=lambda card: not card.access.unlocked)
    return cards


# --- leases ---------------------------------------------------------------------------------------

def _free_slot(item_id: int) -> None:
    db.session.execute(
        update(Item)
        .where(Item.id == item_id, Item.is_gold.is_(False), Item.slots_taken > 0)
        .values(slots_taken=Item.slots_taken - 1)
    )


def _take_slot(item_id: int) -> bool:
    """The one statement that hands out a slot: two members racing for the last one cannot both win."""
    taken = db.session.execute(
        update(Item)
        .where(Item.id == item_id, Item.slots_taken < Item.labels_target, Item.status == "open")
        .values(slots_taken=Item.slots_taken + 1)
        .returning(Item.id)
    ).scalar()
    return taken is not None


def _expire(lease: Lease) -> None:
    done = db.session.execute(
        update(Lease).where(Lease.id == lease.id, Lease.status == "active").values(status="expired").execution_options(synchronize_session=False)
    ).rowcount
    lease.status = "expired"
    if done:
        _free_slot(lease.item_id)


def _daily_use(user_id: int, pack: TaskPack, now: datetime):
    """How much of today's cap in the pack the member used: answers today (UTC) plus active leases."""
    submitted = select(func.count()).select_from(Submission).where(
        Submission.pack_id == pack.id, Submission.user_id == user_id, Submission.created_at >= _day_start(now)
    ).scalar_subquery()
    active = select(func.count()).select_from(Lease).where(
        Lease.user_id == user_id, Lease.status == "active", Lease.pack_id == pack.id
    ).scalar_subquery()
    return submitted + active


def _check_daily_cap(user_id: int, pack: TaskPack, now: datetime, used: int | None = None) -> None:
    if used is None:
        used = db.session.execute(select(_daily_use(user_id, pack, now))).scalar() or 0
    if used >= pack.daily_cap:
        raise DailyCapReached(
            _l("You have done today's %(cap)s items in this pack. Come back tomorrow (UTC) or try another pack.", cap=pack.daily_cap)
        )


def _new_lease(user_id: int, pack: TaskPack, item_id: int, now: datetime) -> Lease | None:
    """Insert the lease; None when the member already holds one for the item (a double click racing)."""
    statement = (
        dialect_insert(Lease)
        .values(item_id=item_id, pack_id=pack.id, user_id=user_id, status="active", created_at=now,
                expires_at=now + timedelta(minutes=pack.lease_minutes))
        .on_conflict_do_nothing(index_elements=["item_id", "user_id"])
        .returning(Lease)
    )
    return db.session.scalars(statement, execution_options={"populate_existing": True}).first()


def _not_leased_by(user_id: int):
    return ~exists().where(Lease.item_id == Item.id, Lease.user_id == user_id)


def _pick_gold(user_id: int, pack: TaskPack) -> Item | None:
    return db.session.scalar(
        select(Item)
        .where(Item.pack_id == pack.id, Item.is_gold == true(), Item.is_exam.is_(False), Item.status == "open", _not_leased_by(user_id))
        .order_by(func.random())
        .limit(1)
    )


def claim_ordinary_statement(user_id: int, pack_id: int):
    """Take a slot of the next ordinary item for the member in one statement, returning the item.

    Items closest to done come first (they verify sooner), then the oldest; `ix_items_pack_open` holds
    that order, so the claim stops at the first entry the member has not leased. SKIP LOCKED lets racing
    members pass each other, and the outer condition is the same guarded increment as `_take_slot`.
    """
    candidate = (
        select(Item.id)
        .where(
            Item.pack_id == pack_id,
            Item.status == "open",
            Item.is_gold == false(),  # "=", not "IS": only an equality lets PostgreSQL use the index for it
            Item.slots_taken < Item.labels_target,
            _not_leased_by(user_id),
        )
        .order_by(Item.slots_taken.desc(), Item.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=Item)
        .scalar_subquery()
    )
    return (
        update(Item)
        .where(Item.id == candidate, Item.slots_taken < Item.labels_target, Item.status == "open")
        .values(slots_taken=Item.slots_taken + 1)
        .returning(Item)
    )


def _claim_ordinary(user_id: int, pack: TaskPack) -> Item | None:
    return db.session.scalars(
        claim_ordinary_statement(user_id, pack.id), execution_options={"synchronize_session": False, "populate_existing": True}
    ).first()


def _active_lease_and_daily_use(user_id: int, pack: TaskPack, now: datetime) -> tuple[Lease | None, int]:
    """The member's latest active lease in the pack (or None) and their daily use there, in one statement:
    the two reads every "next item" starts with."""
    latest = select(func.max(Lease.id)).where(
        Lease.user_id == user_id, Lease.pack_id == pack.id, Lease.status == "active"
    ).scalar_subquery()
    one_row = select(literal(1).label("one")).subquery()
    lease, used = db.session.execute(
        select(Lease, _daily_use(user_id, pack, now)).select_from(one_row).outerjoin(Lease, Lease.id == latest)
    ).one()
    return lease, used or 0


def lease_next_item(user_id: int, pack_id: int, now: datetime) -> Lease:
    """The member's next item in the pack: their unexpired lease if they have one, else a new one."""
    return _lease_next(user_id, pack_id, now)[0]


def next_work_item(user_id: int, pack_id: int, now: datetime) -> WorkItem:
    """`lease_next_item` with what the work page shows of it (a newly claimed item is not read twice)."""
    lease, item = _lease_next(user_id, pack_id, now)
    return work_item(lease, item)


def _lease_next(user_id: int, pack_id: int, now: datetime) -> tuple[Lease, Item | None]:
    """The lease, and its item when this call claimed it (None for a lease the member already held)."""
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id)
        if pack is None:
            raise LabelingNotFound(_l("That pack does not exist."))
        current, used = _active_lease_and_daily_use(user_id, pack, now)
        if current is not None:
            if as_utc(current.expires_at) > now:
                return current, None
            _expire(current)
            used -= 1  # counted while it was active
        _check_unlocked(user_id, pack)
        _check_daily_cap(user_id, pack, now, used)
        for _attempt in range(5):
            item = None
            if pack.gold_rate_percent and random.random() * 100 < pack.gold_rate_percent:
                item = _pick_gold(user_id, pack)
            if item is None:
                item = _claim_ordinary(user_id, pack)
                if item is None:
                    raise NoWorkLeft(_l("There is nothing left for you in this pack right now. Thank you!"))
                lease = _new_lease(user_id, pack, item.id, now)
                if lease is None:
                    _free_slot(item.id)
                    continue
                return lease, item
            lease = _new_lease(user_id, pack, item.id, now)
            if lease is not None:
                return lease, item
        raise NoWorkLeft(_l("Everyone is grabbing items at once. Try again in a moment."))


def lease_item(user_id: int, item_id: int, now: datetime) -> Lease:
    """Lease one specific item (crowd replay feeds answers through this), with the same rules."""
    with unit_of_work() as session:
        item = session.get(Item, item_id)
        if item is None or item.is_exam:
            raise LabelingNotFound(_l("That item does not exist."))
        pack = session.get(TaskPack, item.pack_id)
        existing = session.scalar(select(Lease).where(Lease.item_id == item.id, Lease.user_id == user_id))
        if existing is not None:
            if existing.status == "active" and as_utc(existing.expires_at) > now:
                return existing
            raise NoWorkLeft(_l("You have already had this item; nobody gets the same item twice."))
        _check_unlocked(user_id, pack)
        _check_daily_cap(user_id, pack, now)
        if not item.is_gold and not _take_slot(item.id):
            raise NoWorkLeft(_l("This item has all the labels it needs."))
        if item.is_gold and item.status != "open":
            raise NoWorkLeft(_l("This item has all the labels it needs."))
        lease = _new_lease(user_id, pack, item.id, now)
        if lease is None:
            raise NoWorkLeft(_l("You have already had this item; nobody gets the same item twice."))
        return lease


@dataclass(frozen=True)
class WorkItem:
    lease: Lease
    item: Item
    pack: TaskPack
    media: Media | None


def work_item(lease: Lease, item: Item | None = None) -> WorkItem:
    session = db.session
    item = item if item is not None else session.get(Item, lease.item_id)
    return WorkItem(lease, item, session.get(TaskPack, item.pack_id), get_media(item.media_id))


def release_lease(user_id: int, lease_id: int, *, now: datetime) -> None:
    """The member skips an item: the slot goes back to the pool (they will not get the item again)."""
    with unit_of_work() as session:
        lease = session.get(Lease, lease_id)
        if lease is None or lease.user_id != user_id:
            raise LabelingNotFound(_l("That item is not yours."))
        if lease.status != "active":
            return
        lease.status = "released"
        session.flush()
        _free_slot(lease.item_id)


def expire_leases(now: datetime) -> int:
    """Mark leases past their expiry as expired and give their slots back; returns how many."""
    with unit_of_work() as session:
        rows = session.execute(
            update(Lease)
            .where(Lease.status == "active", Lease.expires_at <= now)
            .values(status="expired")
            .returning(Lease.item_id)
            .execution_options(synchronize_session=False)
        ).scalars().all()
        counts: dict[int, int] = {}
        for item_id in rows:
            counts[item_id] = counts.get(item_id, 0) + 1
        for item_id, count in sorted(counts.items()):
            session.execute(
                update(Item)
                .where(Item.id == item_id, Item.is_gold.is_(False))
                .values(slots_taken=case((Item.slots_taken >= count, Item.slots_taken - count), else_=0))
                .execution_options(synchronize_session=False)
            )
    return len(rows)


# --- submissions and rewards --------------------------------------------------------------------

@dataclass(frozen=True)
class SubmissionResult:
    submission_id: int
    status: str
    feedback: object | None  # quality's GoldFeedback(correct, expected, explanation) for gold items
    points: int
    xp: int
    partner: int = 0
    shares: int = 0


def _quality():
    from sapien.quality import service as quality

    return quality


def submit_answer(user_id: int, lease_id: int, answer: dict, *, now: datetime, time_spent_ms: int | None = None) -> SubmissionResult:
    """Validate the answer, record it, let quality judge it, and pay it if it is accepted."""
    return _submit(user_id, lease_id, lambda _pack, _item: answer, now=now, time_spent_ms=time_spent_ms)[0]


def submit_answer_form(
    user_id: int, lease_id: int, form: Mapping, *, pack_slug: str, now: datetime, time_spent_ms: int | None = None
) -> tuple[SubmissionResult, WorkItem]:
    """`submit_answer` for the work page's form fields (one lookup for parsing and checking); also returns
    the item that was answered and its pack, for the feedback and the next item. A lease of another pack
    is "not yours"."""
    return _submit(user_id, lease_id, lambda pack, item: parse_answer_form(pack, item, form), now=now,
                   time_spent_ms=time_spent_ms, pack_slug=pack_slug)


def _submit(user_id: int, lease_id: int, answer_for, *, now: datetime, time_spent_ms: int | None, pack_slug: str | None = None):
    with unit_of_work() as session:
        query = (
            select(Lease, Item, TaskPack, Campaign, Media)
            .join(Item, Item.id == Lease.item_id)
            .join(TaskPack, TaskPack.id == Lease.pack_id)
            .join(Campaign, Campaign.id == TaskPack.campaign_id)
            .outerjoin(Media, Media.id == Item.media_id)
            .where(Lease.id == lease_id)
        )
        if pack_slug is not None:
            query = query.where(TaskPack.slug == pack_slug)
        row = session.execute(query).first()
        if row is None or row[0].user_id != user_id:
            raise LabelingNotFound(_l("That item is not yours."))
        lease, item, pack, campaign, media = row
        answered = WorkItem(lease, item, pack, media)
        if lease.status == "submitted":
            raise AlreadySubmitted(_l("You already answered this item."))
        if lease.status != "active" or as_utc(lease.expires_at) <= now:
            raise LeaseExpired(_l("Your time for this item ran out, so it went back to the pool. Here is another one."))
        canonical = validate_answer(pack, item, answer_for(pack, item), media=media)
        claimed = session.execute(
            update(Lease)
            .where(Lease.id == lease.id, Lease.status == "active")
            .values(status="submitted")
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            raise AlreadySubmitted(_l("You already answered this item."))
        set_committed_value(lease, "status", "submitted")
        if time_spent_ms is not None and not 0 <= time_spent_ms <= 86_400_000:
            time_spent_ms = None
        submission = Submission(
            lease_id=lease.id,
            item_id=item.id,
            pack_id=pack.id,
            user_id=user_id,
            answer=canonical,
            status="pending_review",
            is_gold=item.is_gold,
            time_spent_ms=time_spent_ms,
            created_at=now,
        )
        session.add(submission)
        session.flush()
        judgement = _quality().judge_submission(submission.id, now=now)
        submission.status = judgement.status
        points = xp = partner = shares = 0
        if judgement.status == "accepted":
            points, xp, partner, shares = _settle_accepted(submission, item, pack, campaign, now)
        elif judgement.status == "rejected":
            submission.decided_at = now
            if not item.is_gold:
                _free_slot(item.id)
        # Read before the commit expires the row (reading it after would reload it).
        result = SubmissionResult(submission.id, submission.status, judgement.feedback, points, xp, partner, shares)
    return result, answered


def _settle_accepted(submission: Submission, item: Item, pack: TaskPack, campaign: Campaign, now: datetime) -> tuple[int, int, int, int]:
    submission.status = "accepted"
    submission.decided_at = now
    amounts = _pay(submission, pack, campaign, now)
    db.session.flush()
    if not item.is_gold:
        _quality().on_submission_settled(submission.id, now=now)
    points, xp = amounts[0], amounts[1]
    sent = dict(user_id=submission.user_id, submission_id=submission.id, pack_id=pack.id, task_type=pack.task_type, xp=xp, points=points, now=now)
    after_commit(lambda: events.submission_accepted.send(None, **sent))
    return amounts


def _pay(submission: Submission, pack: TaskPack, campaign: Campaign, now: datetime) -> tuple[int, int, int, int]:
    from sapien.progression.service import streak_multiplier

    with db.session.no_autoflush:  # the status and amounts below go out in one UPDATE with the first posting
        multiplier = DIFFICULTY_MULTIPLIERS[pack.difficulty] * streak_multiplier(submission.user_id, now)
    kind = f"labeling:{pack.task_type}"
    # Paid once per submission; after a reversal (an overturned rejection) the new payment gets its own keys.
    suffix = ":repaid" if submission.reversed_at is not None else ""
    memo = f"{pack.name[:200]} #{submission.id}"
    points = _floor(pack.reward_points * multiplier) if campaign.kind in ("enterprise", "dual") else 0
    xp = _floor(pack.reward_xp * multiplier)
    partner = _floor(pack.partner_reward * multiplier) if campaign.kind == "dual" else 0
    shares = _floor(pack.revenue_shares * DIFFICULTY_MULTIPLIERS[pack.difficulty]) if campaign.kind == "community" else 0
    user_id, key = submission.user_id, f"submission:{submission.id}"
    submission.paid_points, submission.paid_xp, submission.paid_partner = points, xp, partner
    credits = [
        ledger.Credit("points", points, f"{key}:points{suffix}", memo),
        ledger.Credit("xp", xp, f"{key}:xp{suffix}", memo),
        ledger.Credit("partner", partner * TOKEN_UNIT, f"{key}:partner{suffix}", f"{campaign.partner_token} {memo}"[:255]),
    ]
    # One posting for the whole reward (a few statements, not a few per currency).
    ledger.credit_many(user_id, [one for one in credits if one.amount], kind=kind, now=now)
    if shares:
        share = db.session.scalar(select(RevenueShare).where(RevenueShare.submission_id == submission.id))
        if share is None:
            db.session.add(RevenueShare(campaign_id=campaign.id, pack_id=pack.id, user_id=user_id, submission_id=submission.id,
                                        shares=shares, void=False, created_at=now))
        else:
            share.shares, share.void = shares, False
    return points, xp, partner, shares


def _locked_submission(submission_id: int) -> tuple[Submission, Item, TaskPack, Campaign]:
    row = db.session.execute(
        select(Submission, Item, TaskPack, Campaign)
        .join(Item, Item.id == Submission.item_id)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .join(Campaign, Campaign.id == TaskPack.campaign_id)
        .where(Submission.id == submission_id)
        .with_for_update(of=Submission)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise LabelingNotFound(_l("That submission does not exist."))
    return row


def accept_submission(submission_id: int, *, now: datetime, fixed_answer: dict | None = None) -> None:
    """Accept a submission after review (optionally with the reviewer's fix), pay it and settle it."""
    with unit_of_work():
        submission, item, pack, campaign = _locked_submission(submission_id)
        if fixed_answer is not None:
            submission.fixed_answer = validate_answer(pack, item, fixed_answer)
        if submission.status == "accepted":
            return
        if submission.status == "rejected" and not item.is_gold:
            # An overturned rejection takes its slot back, even past the item's current target.
            db.session.execute(
                update(Item)
                .where(Item.id == item.id)
                .values(
                    labels_target=case((Item.slots_taken + 1 > Item.labels_target, Item.slots_taken + 1), else_=Item.labels_target),
                    slots_taken=Item.slots_taken + 1,
                )
                .execution_options(synchronize_session=False)
            )
        submission.rejection_reason = ""
        _settle_accepted(submission, item, pack, campaign, now)


def reject_submission(submission_id: int, *, reason: str, now: datetime) -> None:
    """Reject a submission: reverse what it was paid, void its revenue shares, free its slot."""
    with unit_of_work() as session:
        submission, item, pack, _campaign = _locked_submission(submission_id)
        if submission.status == "rejected":
            return
        was_paid = submission.status == "accepted" and (submission.paid_points or submission.paid_xp or submission.paid_partner)
        submission.status = "rejected"
        submission.rejection_reason = (reason or "").strip()[:2000]
        submission.decided_at = now
        if was_paid:
            _reverse(submission, pack, now)
        session.execute(
            update(RevenueShare).where(RevenueShare.submission_id == submission.id).values(void=True).execution_options(synchronize_session=False)
        )
        if not item.is_gold:
            _free_slot(item.id)


def _reverse(submission: Submission, pack: TaskPack, now: datetime) -> None:
    kind = f"labeling-reversal:{pack.task_type}"
    key = f"submission:{submission.id}"
    paid_amounts = (
        ("points", submission.paid_points), ("xp", submission.paid_xp), ("partner", submission.paid_partner * TOKEN_UNIT)
    )
    for currency, paid in paid_amounts:
        if not paid:
            continue
        # Never below zero: take what is there (the row lock keeps a concurrent spend from racing us).
        available = db.session.scalar(
            select(Balance.amount).where(Balance.user_id == submission.user_id, Balance.currency == currency).with_for_update()
        ) or 0
        take = min(paid, int(available))
        short = paid - take
        memo = f"reversal of #{submission.id}" + (f", {short} short" if short else "")
        if take:
            ledger.debit(submission.user_id, currency, take, kind=kind, key=f"{key}:{currency}:reversal", now=now, memo=memo)
        if short:
            current_app.logger.info("submission %s reversal of %s %s was %s short", submission.id, paid, currency, short)
    submission.reversed_at = now


def retire_item(item_id: int, *, now: datetime) -> None:
    with unit_of_work() as session:
        session.execute(update(Item).where(Item.id == item_id).values(status="retired"))


def raise_item_target(item_id: int, new_target: int, *, now: datetime) -> None:
    """Ask for more labels on an item (adaptive redundancy); never lowers the target."""
    if new_target < 1:
        raise LabelingError(_l("An item wants at least one label."))
    with unit_of_work() as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id, Item.labels_target < new_target)
            .values(labels_target=new_target)
        )


def item_answers(item_id: int) -> list[Submission]:
    return list(
        db.session.scalars(
            select(Submission).where(Submission.item_id == item_id, Submission.status != "rejected").order_by(Submission.id)
        )
    )


def get_submission(submission_id: int) -> Submission | None:
    return db.session.get(Submission, submission_id)


@dataclass(frozen=True)
class HistoryRow:
    submission: Submission
    pack: TaskPack
    item: Item


def my_submissions(user_id: int, *, page: int = 1, per_page: int = 25) -> tuple[list[HistoryRow], int]:
    total = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.user_id == user_id)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = db.session.execute(
        select(Submission, TaskPack, Item)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .join(Item, Item.id == Submission.item_id)
        .where(Submission.user_id == user_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).tuples().all()
    return [HistoryRow(*row) for row in rows], pages


def gold_feedback_for(user_id: int, submission_id: int):
    """(submission, item, pack) for the member's own answered gold item, or None."""
    row = db.session.execute(
        select(Submission, Item, TaskPack)
        .join(Item, Item.id == Submission.item_id)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .where(Submission.id == submission_id, Submission.user_id == user_id)
    ).first()
    return tuple(row) if row is not None else None


# --- exams ----------------------------------------------------------------------------------------

def _exam_cooldown() -> timedelta:
    return timedelta(hours=int(current_app.config.get("EXAM_RETAKE_COOLDOWN_HOURS", 12)))


@dataclass(frozen=True)
class ExamState:
    pack: TaskPack
    attempt: ExamAttempt | None  # the attempt in progress, or the latest finished one
    passed: bool
    retake_at: datetime | None  # when a failed member may try again
    next_item: Item | None
    next_media: Media | None
    answered: int
    total: int


def exam_state(user_id: int, pack_id: int, now: datetime) -> ExamState:
    pack = db.session.get(TaskPack, pack_id)
    if pack is None:
        raise LabelingNotFound(_l("That pack does not exist."))
    attempt = db.session.scalar(
        select(ExamAttempt).where(ExamAttempt.pack_id == pack.id, ExamAttempt.user_id == user_id).order_by(ExamAttempt.id.desc()).limit(1)
    )
    passed = bool(
        db.session.scalar(
            select(ExamAttempt.id).where(ExamAttempt.pack_id == pack.id, ExamAttempt.user_id == user_id, ExamAttempt.passed.is_(True)).limit(1)
        )
    )
    retake_at = None
    next_item = next_media = None
    answered = total = 0
    if attempt is not None:
        total = len(attempt.item_ids)
        answered = len(attempt.answers)
        if attempt.finished_at is None:
            next_id = next((item_id for item_id in attempt.item_ids if str(item_id) not in attempt.answers), None)
            if next_id is not None:
                next_item = db.session.get(Item, next_id)
                next_media = db.session.get(Media, next_item.media_id) if next_item and next_item.media_id else None
        elif not passed:
            when = as_utc(attempt.finished_at) + _exam_cooldown()
            retake_at = when if when > now else None
    return ExamState(pack, attempt, passed, retake_at, next_item, next_media, answered, total)


def start_exam(user_id: int, pack_id: int, now: datetime) -> ExamAttempt:
    """Begin (or resume) the pack's qualification exam: a random set of its exam items, in order."""
    with unit_of_work() as session:
        state = exam_state(user_id, pack_id, now)
        pack = state.pack
        if state.passed:
            raise ExamError(_l("You already passed this exam."))
        if state.attempt is not None and state.attempt.finished_at is None:
            return state.attempt
        if state.retake_at is not None:
            raise ExamError(_l("You can retake the exam after a short break: come back later today."))
        exam_ids = list(session.scalars(select(Item.id).where(Item.pack_id == pack.id, Item.is_exam.is_(True), Item.status == "open")))
        if not exam_ids:
            raise ExamError(_l("This pack's exam has no questions yet."))
        chosen = random.sample(exam_ids, min(pack.exam_size, len(exam_ids)))
        attempt = ExamAttempt(pack_id=pack.id, user_id=user_id, item_ids=chosen, answers={}, correct=0, started_at=now)
        session.add(attempt)
        session.flush()
    return attempt


def answer_exam_item(user_id: int, attempt_id: int, item_id: int, answer: dict, *, now: datetime) -> ExamAttempt:
    """Record the answer to the exam's current question; the last answer scores the attempt."""
    with unit_of_work() as session:
        attempt = session.scalar(select(ExamAttempt).where(ExamAttempt.id == attempt_id).with_for_update())
        if attempt is None or attempt.user_id != user_id:
            raise LabelingNotFound(_l("That exam is not yours."))
        if attempt.finished_at is not None:
            raise ExamError(_l("This exam attempt is already finished."))
        expected = next((i for i in attempt.item_ids if str(i) not in attempt.answers), None)
        if expected != item_id:
            raise ExamError(_l("Answer the exam's questions in order."))
        item = session.get(Item, item_id)
        pack = session.get(TaskPack, attempt.pack_id)
        canonical = validate_answer(pack, item, answer)
        correct = bool(_quality().answers_match(pack, item.gold_answer, canonical))
        attempt.answers = {**attempt.answers, str(item_id): {"answer": canonical, "correct": correct}}
        attempt.correct += int(correct)
        if len(attempt.answers) == len(attempt.item_ids):
            attempt.finished_at = now
            attempt.passed = attempt.correct * 100 >= pack.exam_pass_percent * len(attempt.item_ids)
    return attempt


# --- media ----------------------------------------------------------------------------------------

def media_for_viewer(media_id: int, user_id: int, *, is_moderator: bool, now: datetime) -> Media | None:
    """The media row if this viewer may see it: moderators; members who may work in its pack; members
    who were shown its item (a lease or an exam); reviewers. None otherwise."""
    media = db.session.get(Media, media_id)
    if media is None:
        return None
    if is_moderator:
        return media
    pack = db.session.get(TaskPack, media.pack_id)
    if pack.status == "open" and access_for(pack, member_standing(user_id)).unlocked:
        return media
    item_ids = select(Item.id).where(Item.media_id == media.id)
    if db.session.scalar(select(Lease.id).where(Lease.user_id == user_id, Lease.item_id.in_(item_ids)).limit(1)):
        return media
    attempts = db.session.scalars(select(ExamAttempt.item_ids).where(ExamAttempt.user_id == user_id, ExamAttempt.pack_id == pack.id))
    wanted = set(db.session.scalars(item_ids))
    if any(wanted & set(ids) for ids in attempts):
        return media
    if _quality().can_review(user_id):
        return media
    return None


def media_path(media: Media) -> Path:
    return media_files.media_root() / media.path


# --- demo ---------------------------------------------------------------------------------------

def seed_demo_packs(now: datetime, *, actor_id: int | None = None, out_dir: Path | None = None) -> list[tuple[TaskPack, ImportReport]]:
    """Write the demo pack folders and import each whose slug is not there yet (idempotent)."""
    import tempfile

    from sapien.labeling.demo_content import write_demo_packs

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

LEASE_SWEEP_EVERY = timedelta(minutes=1)


def lease_sweep_job_id(at: datetime) -> str:
    """One job id per minute: a sweep enqueued twice for the same minute runs once (and is safe twice)."""
    return f"labeling-expire-leases-{int(as_utc(at).timestamp()) // 60}"


@pending_work_source("labeling-lease-sweep")
def _lease_sweep_pending():
    # Always pending: the worker's start-up reconcile begins the chain, each run schedules the next.
    from sapien.database import utcnow

    yield PendingWork("jobs.labeling.expire_leases", (), lease_sweep_job_id(utcnow()))


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
