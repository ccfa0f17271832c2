"""A scan: every detector and the fraud model over the whole community, turned into flags.

One open flag per member and kind: a scan refreshes an open flag's score and evidence, and does not raise
again a flag a moderator decided in the last `QUIET_DAYS` (their decision stands until new evidence ages in).
Members under an active ban are not flagged again. The model scores every member with features; a score of
`FLAG_THRESHOLD` or more raises a "model" flag whose evidence lists the features that drove it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select

from sapien.database import one_at_a_time, unit_of_work
from sapien.extensions import db
from sapien.moderation.models import Decision, Flag
from sapien.moderation.safety import community
from sapien.moderation.safety.detectors import Finding
from sapien.moderation.safety.model import FLAG_THRESHOLD, FraudModel, train
from sapien.moderation.verdicts import banned_member_ids
from sapien.queue import PendingWork, pending_work_source

QUIET_DAYS = 30
SCAN_JOB = "jobs.moderation.scan"


@dataclass(frozen=True)
class ScanReport:
    members: int
    findings: dict[str, int]
    model_flags: int
    flags_opened: int
    flags_refreshed: int


def decided_cases(features: dict[int, list[float]]) -> list[tuple[list[float], int]]:
    """Moderators' past decisions as training rows: restrict or ban is fraud, dismiss is not."""
    cases = {}
    for user_id, action in db.session.execute(select(Decision.user_id, Decision.action).order_by(Decision.id)):
        if user_id in features and action in ("dismiss", "restrict", "ban"):
            cases[user_id] = 0 if action == "dismiss" else 1
    return [(features[user_id], label) for user_id, label in cases.items()]


def model_findings(model: FraudModel, features: dict[int, list[float]]) -> tuple[dict[int, Finding], dict[int, float]]:
    ids = sorted(features)
    scores = model.scores(np.asarray([features[i] for i in ids], dtype=float)) if ids else np.zeros(0)
    found, by_member = {}, {}
    for user_id, score in zip(ids, scores, strict=True):
        by_member[user_id] = float(score)
        if score >= FLAG_THRESHOLD:
            found[user_id] = Finding("model", round(float(score), 3), f"{score:.2f}",
                                     details={"features": [list(part) for part in model.contributions(features[user_id])]})
    return found, by_member


def run_scan(now: datetime, model: FraudModel | None = None) -> ScanReport:
    data = community.read_community()
    model = model or train(decided_cases(data.features))
    found_by_model, _scores = model_findings(model, data.features)
    all_findings = {**data.findings, "model": found_by_model}
    opened = refreshed = 0
    banned = banned_member_ids(now)
    # One scan writes at a time: a second one at the same moment refreshes the flags the first opened
    # (one open flag per member and kind) instead of tripping over them.
    with one_at_a_time("moderation-scan", 0), unit_of_work() as session:
        open_flags = {(f.user_id, f.kind): f for f in session.scalars(select(Flag).where(Flag.status == "open"))}
        quiet = set(session.execute(
            select(Flag.user_id, Flag.kind).where(Flag.status != "open", Flag.updated_at >= now - timedelta(days=QUIET_DAYS))
        ))
        for kind, findings in all_findings.items():
            for user_id, finding in findings.items():
                evidence = {"summary": finding.summary, "members": sorted(finding.members), **finding.details}
                flag = open_flags.get((user_id, kind))
                if flag is not None:
                    flag.score, flag.evidence, flag.updated_at = finding.score, evidence, now
                    refreshed += 1
                    continue
                if (user_id, kind) in quiet:
                    continue
                if user_id in banned:
                    continue
                session.add(Flag(user_id=user_id, kind=kind, score=finding.score, evidence=evidence, status="open", created_at=now, updated_at=now))
                opened += 1
    return ScanReport(
        members=len(data.features), findings={kind: len(found) for kind, found in data.findings.items()},
        model_flags=len(found_by_model), flags_opened=opened, flags_refreshed=refreshed,
    )


def scan_job_id(at: datetime) -> str:
    """One scan per hour (safe twice)."""
    return f"moderation-scan-{int(at.timestamp()) // 3600}"


@pending_work_source("moderation-scan", periodic=True)
def _scan_pending():
    from sapien.database import utcnow

    yield PendingWork(SCAN_JOB, (), scan_job_id(utcnow()))
