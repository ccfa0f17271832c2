"""The default quest catalogue and its rotation: daily and weekly quests on every install, with no moderator.

The catalogue
-------------
`CATALOGUE` lists quest templates (docs/quests.md describes each). Every UTC day and every ISO week the
rotation turns a few of them into ordinary running quests: the templates marked ``always`` plus a
deterministic pick of the others, ranked by a hash of the period key and the template's slug, so every
process (and every rerun) picks the same quests for the same day, and the pick changes from one day to
the next. `ROTATION_SIZES` says how many quests each period runs.

A rotated quest is a plain `Quest` row starting at the period's first instant and ending at its last, so
progress, claims and rewards work exactly as for moderators' quests (and moderators can edit or switch
off a rotated quest like any other). Its `catalogue_slug` and `rotation_key` are unique together: the
rotation run twice, or by two processes at once, creates nothing new.

Who runs it: the reconciler (every minute, through the pending-work source in progression/pending.py, whenever the current
day's or week's quests are missing), `flask quests rotate`, the demo seed, and the quests page and
dashboard on first read, so a fresh install shows quests at once. `QUEST_ROTATION` (on by default)
switches the automatic runs off; the CLI command always rotates.

Titles and descriptions are stored in English (the msgids) and translated when shown (`quest_text`), so
each member reads them in their own language; a title a moderator rewrote is shown as written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select, tuple_

from sapien.database import dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.periods import period_key, period_window
from sapien.progression.models import Quest
from sapien.progression.quests import announce_quests_changed


def N_(text: str) -> str:  # noqa: N802 - Babel's own marker: extracted for translation, translated when shown
    return text


@dataclass(frozen=True)
class QuestTemplate:
    slug: str
    period: str  # "daily" or "weekly"
    objective: str
    target: int
    title: str  # English; translated when shown
    description: str
    reward_points: int = 0
    reward_xp: int = 0
    reward_freezes: int = 0
    accuracy_percent: int | None = None
    scope: str = "member"
    always: bool = False  # in every rotation of its period
    for_reviewers: bool = False  # shown only to members who can review


CATALOGUE: tuple[QuestTemplate, ...] = (
    # --- daily --------------------------------------------------------------------------------
    QuestTemplate("daily-label-20", "daily", "label_items", 20, N_("Label 20 items today"),
                  N_("Any pack counts. A good first habit."), reward_points=40, reward_xp=30, always=True),
    QuestTemplate("daily-label-50", "daily", "label_items", 50, N_("Label 50 items today"),
                  N_("A longer session: any pack counts."), reward_points=120, reward_xp=80),
    QuestTemplate("daily-gold-5", "daily", "gold_accuracy", 5, N_("Answer 5 gold items right"),
                  N_("Check items have a known answer: get them right with 80% accuracy or better."),
                  reward_points=50, reward_xp=40, accuracy_percent=80),
    QuestTemplate("daily-streak", "daily", "streak_days", 2, N_("Keep your streak"),
                  N_("Have an answer accepted today, on top of yesterday’s."), reward_points=30, reward_xp=20),
    QuestTemplate("daily-review-10", "daily", "reviews", 10, N_("Review 10 answers"),
                  N_("For reviewers: check 10 answers in the review queue."), reward_points=60, reward_xp=40,
                  for_reviewers=True),
    QuestTemplate("daily-arena-3", "daily", "arena_matches", 3, N_("Play 3 arena matches"),
                  N_("Error hunts, accuracy duels and guild clashes count, once they are rated."), reward_points=40, reward_xp=30),
    # --- weekly -------------------------------------------------------------------------------
    QuestTemplate("weekly-label-150", "weekly", "label_items", 150, N_("Label 150 items this week"),
                  N_("Any pack counts, on any day of the week."), reward_points=300, reward_xp=200, always=True),
    QuestTemplate("weekly-gold-25", "weekly", "gold_accuracy", 25, N_("25 gold items at 90% accuracy"),
                  N_("Check items have a known answer. Careful work pays."), reward_points=250, reward_xp=150,
                  accuracy_percent=90),
    QuestTemplate("weekly-streak-5", "weekly", "streak_days", 5, N_("Label 5 days in a row"),
                  N_("A five-day streak earns a streak freeze, to protect a day you miss."),
                  reward_xp=100, reward_freezes=1),
    QuestTemplate("weekly-review-50", "weekly", "reviews", 50, N_("Review 50 answers this week"),
                  N_("For reviewers: the queue needs you."), reward_points=300, reward_xp=200, for_reviewers=True),
    QuestTemplate("weekly-arena-wins-5", "weekly", "arena_wins", 5, N_("Win 5 arena matches this week"),
                  N_("Any rated arena win counts; a guild clash won counts for each player of the winning side."),
                  reward_points=250, reward_xp=150),
    QuestTemplate("weekly-guild-500", "weekly", "label_items", 500, N_("Label 500 items with your guild"),
                  N_("Every member’s labels count towards the guild’s total."), reward_points=200, reward_xp=150,
                  scope="guild"),
)
BY_SLUG = {template.slug: template for template in CATALOGUE}
ROTATION_PERIODS = ("daily", "weekly")
ROTATION_SIZES = {"daily": 3, "weekly": 3}


def rotation_for(period: str, key: str) -> list[QuestTemplate]:
    """The templates that run in the period `key` ("2026-11-22", "2026-W47"): the `always` ones, then the
    others ranked by a hash of key and slug until the period's size is reached. Same key, same pick."""
    templates = [t for t in CATALOGUE if t.period == period]
    fixed = [t for t in templates if t.always]
    others = sorted((t for t in templates if not t.always), key=lambda t: hashlib.sha256(f"{key}:{t.slug}".encode()).hexdigest())
    return fixed + others[: max(0, ROTATION_SIZES[period] - len(fixed))]


def _current_rotation(now: datetime) -> list[tuple[QuestTemplate, str]]:
    pairs = []
    for period in ROTATION_PERIODS:
        key = period_key(period, now)
        pairs += [(template, key) for template in rotation_for(period, key)]
    return pairs


def missing_rotation(now: datetime) -> list[tuple[QuestTemplate, str]]:
    """The (template, period key) pairs of the current day and week that have no quest yet (one query)."""
    wanted = _current_rotation(now)
    present = set(
        db.session.execute(
            select(Quest.catalogue_slug, Quest.rotation_key).where(
                tuple_(Quest.catalogue_slug, Quest.rotation_key).in_([(t.slug, key) for t, key in wanted])
            )
        )
    )
    return [(t, key) for t, key in wanted if (t.slug, key) not in present]


def rotate_quests(now: datetime) -> list[int]:
    """Create the current day's and ISO week's catalogue quests that are missing; returns the new ids.

    Idempotent: each insert skips a (template, period) that already has its quest, whoever made it.
    """
    missing = missing_rotation(now)
    if not missing:
        return []
    created = []
    with unit_of_work() as session:
        for template, key in missing:
            starts_at, ends_at = period_window(template.period, now)
            statement = (
                dialect_insert(Quest)
                .values(
                    title=template.title, description=template.description, period=template.period,
                    objective=template.objective, scope=template.scope, task_type="", target=template.target,
                    accuracy_percent=template.accuracy_percent, reward_points=template.reward_points,
                    reward_xp=template.reward_xp, reward_badge=None, reward_freezes=template.reward_freezes,
                    starts_at=starts_at, ends_at=ends_at, is_active=True, created_by=None, created_at=now,
                    updated_at=now, catalogue_slug=template.slug, rotation_key=key,
                )
                .on_conflict_do_nothing(index_elements=["catalogue_slug", "rotation_key"])
                .returning(Quest.id)
            )
            quest_id = session.execute(statement).scalar()
            if quest_id is not None:
                created.append(quest_id)
        if created:
            announce_quests_changed()
    return created


def rotation_enabled() -> bool:
    return bool(current_app.config.get("QUEST_ROTATION", True))


def ensure_rotation(now: datetime) -> list[int]:
    """The first read of a new day (or of a fresh install) makes its quests, if rotation is on."""
    return rotate_quests(now) if rotation_enabled() else []


def hidden_from(quest: Quest, can_review: bool) -> bool:
    """Reviewer quests of the catalogue are not shown to members who cannot review yet."""
    template = BY_SLUG.get(quest.catalogue_slug or "")
    return template is not None and template.for_reviewers and not can_review


def quest_text(quest: Quest, field: str = "title") -> str:
    """A quest's title or description in the member's language: catalogue quests are stored in English
    and translated here (a text a moderator rewrote has no translation and is shown as written)."""
    text = getattr(quest, field) or ""
    return gettext(text) if quest.catalogue_slug and text else text
