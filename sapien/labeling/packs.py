"""Campaigns and task packs: settings, validation, lookups and counts."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, select

from sapien import events
from sapien.database import as_utc, unit_of_work
from sapien.extensions import db
from sapien.labeling.errors import InvalidSettings, LabelingNotFound
from sapien.labeling.models import (
    CAMPAIGN_KINDS,
    DIFFICULTIES,
    TASK_TYPES,
    Campaign,
    Item,
    Lease,
    Media,
    Submission,
    TaskPack,
)

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


def day_start(now: datetime) -> datetime:
    now = as_utc(now)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def round_down(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def reward_multiplier(task_type: str, difficulty: str) -> Decimal:
    """What a pack's base rewards are multiplied by: its difficulty's and its task type's rates, which are
    economy's settings (asked, as economy sits above labeling)."""
    return Decimal(events.reward_rate.ask(task_type=task_type, difficulty=difficulty)) / 10_000


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


def as_bool(value) -> bool:
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
    multi_label = as_bool(values["multi_label"]) and task_type in CLASSIFICATION_TYPES
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
        "exam_required": as_bool(values["exam_required"]),
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
        # A draft until it is published (`publish_pack`): members never see a pack without its items.
        pack = TaskPack(campaign_id=campaign.id, status="draft", created_at=now, **values)
        session.add(pack)
        session.flush()
    return pack


def _refuse_empty(session, pack: TaskPack) -> None:
    ordinary = session.scalar(select(func.count(Item.id)).where(Item.pack_id == pack.id, Item.is_gold.is_(False)))
    if not ordinary:
        raise InvalidSettings(_l("%(pack)s has no items to label yet: upload its items, then publish it.", pack=pack.name))


def publish_pack(pack_id: int, *, now: datetime) -> TaskPack:
    """Open a draft pack to members; refused while it has no items to label (gold items alone are not work)."""
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id, with_for_update=True)
        if pack is None:
            raise LabelingNotFound(_l("That pack does not exist."))
        if pack.status != "draft":
            raise InvalidSettings(_l("%(pack)s is already published.", pack=pack.name))
        _refuse_empty(session, pack)
        pack.status = "open"
    return pack


def set_pack_status(pack_id: int, status: str, *, now: datetime) -> TaskPack:
    """Open, pause or close a pack. Opening a draft is publishing it, with the same check."""
    if status not in ("open", "paused", "closed"):
        raise InvalidSettings(_l("Choose open, paused or closed."))
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id, with_for_update=True)
        if pack is None:
            raise LabelingNotFound(_l("That pack does not exist."))
        if pack.status == "draft" and status == "open":
            _refuse_empty(session, pack)
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
    open_items: int = 0  # ordinary items with a free slot now
    unfinished: int = 0  # ordinary items not yet retired (some may be leased by others right now)
    no_consensus: int = 0  # retired without a verified label: their answers never agreed
    submissions: int = 0

    @property
    def all_done(self) -> bool:
        """No item is left for anyone: "Start" has nothing to offer (an empty pack, or a finished one)."""
        return self.unfinished == 0


def pack_counts(pack_ids: list[int] | None = None) -> dict[int, PackCounts]:
    """Items (ordinary, gold, exam), items wanting labels now, items not yet retired, items that never
    converged, and submissions, per pack."""
    ordinary = and_(Item.is_gold.is_(False))
    query = select(
        Item.pack_id,
        func.sum(case((ordinary, 1), else_=0)),
        func.sum(case((and_(Item.is_gold.is_(True), Item.is_exam.is_(False)), 1), else_=0)),
        func.sum(case((Item.is_exam.is_(True), 1), else_=0)),
        func.sum(case((and_(ordinary, Item.status == "open", Item.slots_taken < Item.labels_target), 1), else_=0)),
        func.sum(case((and_(ordinary, Item.status == "open"), 1), else_=0)),
        func.sum(case((Item.no_consensus_at.is_not(None), 1), else_=0)),
    ).group_by(Item.pack_id)
    submissions = select(Submission.pack_id, func.count()).group_by(Submission.pack_id)
    if pack_ids is not None:
        query = query.where(Item.pack_id.in_(pack_ids))
        submissions = submissions.where(Submission.pack_id.in_(pack_ids))
    found = {row[0]: [int(value or 0) for value in row[1:]] for row in db.session.execute(query)}
    submitted = dict(db.session.execute(submissions).all())
    return {
        pack_id: PackCounts(*found.get(pack_id, [0, 0, 0, 0, 0, 0]), submissions=submitted.get(pack_id, 0))
        for pack_id in set(found) | set(submitted)
    }
