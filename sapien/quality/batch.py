"""Aggregating a whole pack (crowd-kit methods) into verified labels, as a job."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.dialects.sqlite import insert as dialect_insert

from sapien import events
from sapien.database import after_commit, is_postgres, unit_of_work, utcnow
from sapien.extensions import db
from sapien.failpoints import failpoint
from sapien.labeling import settlement as labeling_settlement
from sapien.labeling.answers import answers_match
from sapien.labeling.models import Item, Submission, TaskPack
from sapien.labeling.packs import CLASSIFICATION_TYPES
from sapien.quality import aggregation, aggregation_queue, consensus
from sapien.quality.aggregation import label_key, labels_of
from sapien.quality.errors import QualityError
from sapien.quality.models import Reputation, Review, VerifiedLabel
from sapien.quality.online import member_skill
from sapien.quality.reputation import DEFAULT_REPUTATION
from sapien.queue import PendingWork, pending_work_source


@dataclass
class AggregationReport:
    pack_id: int
    method: str
    answers: int
    items: int
    labels_written: int
    seconds: float


def default_method(pack: TaskPack) -> str:
    if pack.task_type in CLASSIFICATION_TYPES:
        return "calibrated"
    if pack.task_type == "bounding_boxes":
        return "box_medoid"
    return "medoid"


def answer_value(pack: TaskPack, answer: dict):
    if pack.task_type in CLASSIFICATION_TYPES:
        return label_key(answer.get("labels") or [])
    if pack.task_type == "bounding_boxes":
        return tuple(tuple(sorted(box.items())) for box in answer.get("boxes") or [])
    return str(answer.get("text", ""))  # as written: the consensus is one of the answers, line breaks and all


def _canonical(pack: TaskPack, value) -> dict:
    if pack.task_type in CLASSIFICATION_TYPES:
        return {"labels": labels_of(value)}
    if pack.task_type == "bounding_boxes":
        return {"boxes": [dict(box) for box in value]}
    return {"text": value}


def aggregate_pack(pack_id: int, *, now: datetime, method: str | None = None, finalize: bool = False) -> AggregationReport:
    """Re-aggregate every answered item of a pack with crowd-kit and store verified labels.

    Retired items get their label (re)computed; with `finalize` (a finished campaign, the crowd replay)
    open items that have answers are labelled too. Gold answers initialise Dawid-Skene; reputation and
    gold accuracy weigh the other methods. Texts and boxes take the same consensus as the online decision
    (`quality.consensus`) and are labelled only when two people stand behind it; an item flagged as never
    converging keeps no label (its answers still inform the classification models) until a classification
    pack is finalized, which labels the flagged items three or more answers stand behind with the batch
    model (still flagged, their answers unpaid until review, not announced as verified). Bulk reads and
    writes: 100,000 answers take a few seconds.
    """

    started = time.perf_counter()
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id)
        if pack is None:
            raise QualityError(_l("There is no such pack."))
        method = method or default_method(pack)
        allowed = {"bounding_boxes": ("box_medoid",), "text_cleaning": ("medoid",), "audio_transcription": ("medoid",)}.get(
            pack.task_type, aggregation.CLASSIFICATION_METHODS
        )
        if method not in allowed:
            raise QualityError(_l("That aggregation method does not fit this pack's task type."))
        # Answers come back as their JSON text (canonical answers serialise identically) and each distinct
        # text is parsed once: 100,000 classification answers hold a handful of distinct texts.
        answer_text = func.coalesce(cast(Submission.fixed_answer, Text), cast(Submission.answer, Text))
        rows = session.execute(
            select(Submission.id, Submission.item_id, Submission.user_id, answer_text, Submission.status, Item.is_gold, Item.status,
                   Item.no_consensus_at, Submission.reward_state)
            .join(Item, Item.id == Submission.item_id)
            .where(Submission.pack_id == pack.id, Submission.status != "pending_review")
        ).all()
        parsed: dict[str, object] = {}

        def value_of(text: str):
            value = parsed.get(text)
            if value is None:
                value = parsed[text] = answer_value(pack, json.loads(text))
            return value

        gold_answers = dict(session.execute(select(Item.id, Item.gold_answer).where(Item.pack_id == pack.id, Item.is_gold.is_(True))).all())
        votes, gold_votes, gold_tasks, item_status = [], [], [], {}
        flagged: set[int] = set()  # items that never converged online (`convergence`)
        gold_stats: dict[int, list[int]] = {}
        open_rewards: set[int] = set()  # answers whose reward still waits for verification
        classification = pack.task_type in CLASSIFICATION_TYPES
        for sub_id, item_id, user_id, text, status, is_gold, state, no_consensus_at, reward_state in rows:
            if is_gold:
                gold_answer = gold_answers.get(item_id)
                if gold_answer is not None:
                    given = value_of(text)
                    gold_votes.append((user_id, given, answer_value(pack, gold_answer)))
                    if classification:
                        # Gold items are tasks too: they tell Dawid-Skene about each member (no label is written for them).
                        gold_tasks.append(aggregation.Vote(item_id, user_id, sub_id, given))
                    stats = gold_stats.setdefault(user_id, [0, 0])
                    stats[0] += answers_match(pack, gold_answer, json.loads(text))
                    stats[1] += 1
                continue
            if status != "accepted":
                continue
            votes.append(aggregation.Vote(item_id, user_id, sub_id, value_of(text)))  # a flagged item's answers still tell about their authors
            item_status[item_id] = state
            if no_consensus_at is not None:
                flagged.add(item_id)
                continue  # its answers wait for the review they were queued for: the batch pays none of them
            if reward_state in ("pending", "not_verified"):
                open_rewards.add(sub_id)
        user_ids = sorted({v.user_id for v in votes})
        scores = dict(session.execute(select(Reputation.user_id, Reputation.score).where(Reputation.user_id.in_(user_ids))).all()) if user_ids else {}
        skills = {u: member_skill(scores.get(u, DEFAULT_REPUTATION), *gold_stats.get(u, (0, 0))) for u in user_ids}
        if pack.task_type in CLASSIFICATION_TYPES:
            gold_truth = {item_id: answer_value(pack, gold_answers[item_id]) for item_id in {v.item_id for v in gold_tasks}}
            results = aggregation.aggregate_classification(votes + gold_tasks, method=method, gold_votes=gold_votes, skills=skills, gold_truth=gold_truth)
        else:
            results = _consensus_labels(pack, votes, skills)
        by_item: dict[int, list[aggregation.Vote]] = {}
        for vote in votes:
            by_item.setdefault(vote.item_id, []).append(vote)

        def labelled(item_id: int) -> bool:
            """A flagged item keeps no label while answers may still come. Once a classification pack is
            finalized, the batch model (which weighs each member's record over the whole pack) labels a
            flagged item that three or more answers stand behind (a split of two is one person's word
            against another's); the item stays flagged for its owner, its answers unpaid until review."""
            if item_id not in item_status:
                return False
            if item_id in flagged:
                return finalize and pack.task_type in CLASSIFICATION_TYPES and len(by_item.get(item_id, ())) >= 3
            return finalize or item_status[item_id] == "retired"

        chosen = {item_id: result for item_id, result in results.items() if labelled(item_id)}
        review_of, vouched_by = {}, {}
        for submission_id, review_id, reviewer_id, outcome in session.execute(
            select(Review.submission_id, Review.id, Review.reviewer_id, Review.outcome).where(
                Review.pack_id == pack.id, Review.is_planted.is_(False), Review.status == "done"
            )
        ):
            review_of[submission_id] = review_id
            if outcome in ("accepted", "fixed") and reviewer_id is not None:
                vouched_by[submission_id] = reviewer_id
        author_of = {v.submission_id: v.user_id for v in votes}

        def backed(result: aggregation.Aggregate) -> bool:
            return consensus.verifies([author_of[s] for s in result.submission_ids], [vouched_by[s] for s in result.submission_ids if s in vouched_by])

        if pack.task_type not in CLASSIFICATION_TYPES:
            chosen = {item_id: result for item_id, result in chosen.items() if backed(result)}
        existing = set(session.scalars(select(VerifiedLabel.item_id).where(VerifiedLabel.pack_id == pack.id)))
        rows_out, inserts = [], []
        for item_id, result in chosen.items():
            item_votes = by_item.get(item_id, [])
            submission_ids = [v.submission_id for v in item_votes]
            values = {
                "item_id": item_id,
                "pack_id": pack.id,
                "answer": _canonical(pack, result.value),
                "confidence": round(aggregation.clamp_confidence(result.confidence), 6),
                "method": method,
                "submission_ids": submission_ids,
                "contributor_ids": sorted({v.user_id for v in item_votes}),
                "review_ids": sorted(review_of[s] for s in submission_ids if s in review_of),
                "labels_used": len(item_votes),
                "verified_at": now,
            }
            rows_out.append(values)
            if item_id not in existing:
                inserts.append(values)
        _upsert_verified_labels(rows_out)
        # Classification labels one answer alone backs are still written (the crowd replays score every
        # item), but no answer is paid on one person's word: those wait for more answers or a review.
        _verify_open_answers(pack, {item_id: result for item_id, result in chosen.items() if backed(result)}, by_item, open_rewards, now)
        failpoint("aggregate.before-commit")
        task_type = pack.task_type
        fresh = [(v["item_id"], v["contributor_ids"], v["confidence"]) for v in inserts if v["item_id"] not in flagged]  # a flagged one is not verified

        def announce() -> None:
            for item_id, contributor_ids, confidence in fresh:
                events.item_verified.send(None, item_id=item_id, pack_id=pack_id, task_type=task_type, contributor_ids=contributor_ids, confidence=confidence, now=now)

        after_commit(announce)
    return AggregationReport(pack_id, method, len(votes), len(item_status), len(chosen), time.perf_counter() - started)


def _consensus_labels(pack: TaskPack, votes: list[aggregation.Vote], skills: dict[int, float]) -> dict[int, aggregation.Aggregate]:
    """Texts and boxes: each item's skill-weighted medoid (`consensus.consensus`, as the online decision),
    supported by the answers that match it."""
    by_item: dict[int, list[aggregation.Vote]] = {}
    for vote in votes:
        by_item.setdefault(vote.item_id, []).append(vote)
    results = {}
    for item_id, item_votes in by_item.items():
        item_votes.sort(key=lambda v: v.submission_id)  # in the order the online decision reads them (ties go to the earlier)
        found = consensus.consensus(
            pack, [_canonical(pack, v.value) for v in item_votes], [skills.get(v.user_id, 1.0) for v in item_votes]
        )
        results[item_id] = aggregation.Aggregate(
            item_votes[found.index].value, found.confidence, [item_votes[i].submission_id for i in found.supporting]
        )
    return results


def _verify_open_answers(pack: TaskPack, chosen: dict, by_item: dict, open_rewards: set[int], now: datetime) -> None:
    """Answers still waiting for verification on the items labelled here (a finalized pack's open items) are
    verified or not by the label, as the online aggregate does when an item retires."""
    agreeing, disagreeing = [], []
    for item_id, result in chosen.items():
        waiting = [vote for vote in by_item.get(item_id, []) if vote.submission_id in open_rewards]
        if not waiting:
            continue
        label = _canonical(pack, result.value)
        for vote in waiting:
            (agreeing if answers_match(pack, label, _canonical(pack, vote.value)) else disagreeing).append(vote.submission_id)
    if agreeing or disagreeing:
        labeling_settlement.verify_answers(pack.id, agreeing, disagreeing, now=now)


def _upsert_verified_labels(rows: list[dict]) -> None:
    """INSERT … ON CONFLICT (item_id) DO UPDATE, many rows per statement (one UPDATE per row is 10× slower)."""
    if not rows:
        return

    columns = ("answer", "confidence", "method", "submission_ids", "contributor_ids", "review_ids", "labels_used", "verified_at")
    table = VerifiedLabel.__table__
    if is_postgres():
        # One statement per 5,000 rows: the columns travel as arrays and unnest() turns them into rows.

        upsert = text(
            "INSERT INTO verified_labels (item_id, pack_id, answer, confidence, method, submission_ids, contributor_ids, review_ids,"
            " labels_used, verified_at)"
            " SELECT item_id, pack_id, answer::json, confidence, method, submission_ids::json, contributor_ids::json, review_ids::json,"
            " labels_used, verified_at FROM unnest(CAST(:item_id AS integer[]), CAST(:pack_id AS integer[]), CAST(:answer AS text[]),"
            " CAST(:confidence AS double precision[]), CAST(:method AS text[]), CAST(:submission_ids AS text[]),"
            " CAST(:contributor_ids AS text[]), CAST(:review_ids AS text[]), CAST(:labels_used AS integer[]),"
            " CAST(:verified_at AS timestamptz[]))"
            " AS batch(item_id, pack_id, answer, confidence, method, submission_ids, contributor_ids, review_ids, labels_used, verified_at)"
            " ON CONFLICT (item_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns)
            + " WHERE verified_labels.overridden_at IS NULL"  # a moderator's override stands
        )
        for start in range(0, len(rows), 5000):
            batch = rows[start : start + 5000]
            params = {key: [row[key] for row in batch] for key in ("item_id", "pack_id", "confidence", "method", "labels_used", "verified_at")}
            for key in ("answer", "submission_ids", "contributor_ids", "review_ids"):
                params[key] = [json.dumps(row[key]) for row in batch]
            db.session.execute(upsert, params)
    else:
        statement = dialect_insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.item_id], set_={c: statement.excluded[c] for c in columns}, where=table.c.overridden_at.is_(None)
        )
        db.session.connection().execute(statement, rows)
    db.session.expire_all()


def enqueue_aggregation(pack_id: int, *, now: datetime):
    """Record the request on the pack, then queue the job (see quality/aggregation_queue.py)."""
    return aggregation_queue.request_aggregation(pack_id, now=now)


@pending_work_source("quality", periodic=True)
def _pending_quality_work():
    year, week, _ = utcnow().isocalendar()
    yield PendingWork("jobs.quality.decay_reputation", (), f"quality-decay-{year}-W{week:02d}")
