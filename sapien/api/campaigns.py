"""Client campaigns over the API: a thin layer over labeling's campaigns, packs and imports.

An API campaign is a labeling campaign owned by an organization (`campaigns.organization_id`) with its
packs; the first pack is made with it. Every lookup goes through `own_campaign`, so another
organization's campaign is "not found", never "forbidden".
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from sapien.api.errors import ApiError, NotFound
from sapien.api.models import CampaignPayment, CampaignTerms, Organization
from sapien.database import as_utc, unit_of_work
from sapien.economy import revenue
from sapien.economy.errors import EconomyError
from sapien.extensions import db
from sapien.labeling import imports, packs
from sapien.labeling.errors import LabelingError
from sapien.labeling.models import Campaign, Submission, TaskPack
from sapien.quality.models import VerifiedLabel

ITEM_FILE_SUFFIXES = {".jsonl": ".jsonl", ".ndjson": ".jsonl", ".csv": ".csv"}
BUDGET_LOW_SHARE = 0.2  # "budget low" once less than a fifth of the budget is left


@dataclass
class PackSpec:
    name: str
    task_type: str
    labels: list[str] = field(default_factory=list)
    guidelines: str = ""
    redundancy: int = 3
    multi_label: bool = False
    reward_points: int | None = None
    gold_items: list[dict] = field(default_factory=list)


@dataclass
class CampaignSpec:
    name: str
    pack: PackSpec
    description: str = ""
    budget_points: int | None = None
    deadline: datetime | None = None


def own_campaign(organization_id: int, campaign_id: int, *, lock: bool = False) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id, with_for_update=lock)
    if campaign is None or campaign.organization_id != organization_id:
        raise NotFound(_l("There is no such campaign."))
    return campaign


def campaign_packs(campaign_id: int) -> list[TaskPack]:
    return list(db.session.scalars(select(TaskPack).where(TaskPack.campaign_id == campaign_id).order_by(TaskPack.id)))


def campaign_terms(campaign_id: int) -> CampaignTerms | None:
    return db.session.get(CampaignTerms, campaign_id)


def _write_rows(folder: Path, rows: list[dict]) -> Path:
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    return path


def _gold_rows(rows: list[dict]) -> list[dict]:
    gold = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or row.get("gold") in (None, ""):
            raise ApiError(_l("Gold item %(number)s needs a gold answer.", number=number), field="gold_items")
        gold.append(row)
    return gold


def add_pack(organization_id: int, campaign_id: int, spec: PackSpec, *, now: datetime) -> TaskPack:
    """A pack in a campaign, with its gold items (all of them valid, or no pack at all)."""
    with unit_of_work() as session:
        campaign = own_campaign(organization_id, campaign_id)
        organization = session.get(Organization, organization_id)
        number = 1 + (session.scalar(select(func.count(TaskPack.id)).where(TaskPack.campaign_id == campaign.id)) or 0)
        settings = {
            "name": spec.name,
            "slug": f"{organization.slug[:40]}-{campaign.id}-{number}",
            "task_type": spec.task_type,
            "label_options": list(spec.labels or []),
            "instructions": spec.guidelines or "",
            "labels_per_item": spec.redundancy,
            "multi_label": spec.multi_label,
            "gold_rate_percent": 10 if spec.gold_items else 0,
        }
        if spec.reward_points is not None:
            settings["reward_points"] = spec.reward_points
        try:
            pack = packs.create_pack(campaign.id, settings, actor_id=None, now=now)
        except LabelingError as error:
            raise ApiError(error.message, field=_api_field(error.field)) from None
        if spec.gold_items:
            gold = _gold_rows(spec.gold_items)
            with tempfile.TemporaryDirectory() as folder:
                report = imports.import_items(pack.id, _write_rows(Path(folder), gold), media_dir=None, now=now)
            if report.problems:
                first = report.problems[0]
                raise ApiError(_l("Gold item %(number)s: %(problem)s", number=first.line, problem=first.message), field="gold_items")
    return pack


_FIELD_NAMES = {"label_options": "labels", "instructions": "guidelines", "labels_per_item": "redundancy"}


def _api_field(name: str | None) -> str | None:
    return _FIELD_NAMES.get(name, name) if name else None


def create_campaign(organization_id: int, spec: CampaignSpec, *, now: datetime) -> Campaign:
    """A campaign, its terms and its first pack with its gold items, in one transaction."""
    if spec.budget_points is not None and spec.budget_points < 0:
        raise ApiError(_l("The budget cannot be negative."), field="budget_points")
    if spec.deadline is not None and as_utc(spec.deadline) <= now:
        raise ApiError(_l("The deadline must be in the future."), field="deadline")
    with unit_of_work() as session:
        organization = session.get(Organization, organization_id)
        if organization is None:
            raise NotFound(_l("There is no such organization."))
        try:
            campaign = packs.create_campaign(
                name=spec.name, kind="enterprise", description=spec.description, client_name=organization.name, actor_id=None, now=now
            )
        except LabelingError as error:
            raise ApiError(error.message, field=error.field) from None
        campaign.organization_id = organization_id
        session.add(CampaignTerms(campaign_id=campaign.id, budget_points=spec.budget_points, deadline=spec.deadline))
        session.flush()
        add_pack(organization_id, campaign.id, spec.pack, now=now)
    return campaign


def list_campaigns(organization_id: int, *, after_id: int | None, limit: int) -> list[Campaign]:
    query = select(Campaign).where(Campaign.organization_id == organization_id)
    if after_id is not None:
        query = query.where(Campaign.id < after_id)
    return list(db.session.scalars(query.order_by(Campaign.id.desc()).limit(limit)))


def campaign_state(campaign: Campaign, pack_states: list[str], terms: CampaignTerms | None) -> str:
    """draft (nothing published), active, paused, or done (every item verified or retired)."""
    if terms is not None and terms.done_at is not None:
        return "done"
    if not pack_states or all(state == "draft" for state in pack_states):
        return "draft"
    if "open" not in pack_states:
        return "paused"
    return "active"


def set_paused(organization_id: int, campaign_id: int, paused: bool, *, now: datetime) -> Campaign:
    """Pause every open pack, or resume every paused one (a draft pack with items is published)."""
    with unit_of_work():
        campaign = own_campaign(organization_id, campaign_id, lock=True)
        for pack in campaign_packs(campaign.id):
            try:
                if paused and pack.status == "open":
                    packs.set_pack_status(pack.id, "paused", now=now)
                elif not paused and pack.status in ("paused", "draft"):
                    packs.set_pack_status(pack.id, "open", now=now)
            except LabelingError as error:
                raise ApiError(error.message) from None
    return campaign


@dataclass
class UploadReport:
    pack_id: int
    imported: int
    gold: int
    media_stored: int
    problems: list[imports.ImportProblem]
    pack_status: str


def upload_items(
    organization_id: int, campaign_id: int, *, filename: str, content: bytes, media: list[tuple[str, bytes]], pack_id: int | None, now: datetime
) -> UploadReport:
    """Import an items file (JSONL or CSV; media files beside it by name) into a pack of the campaign.

    Bad rows are reported by line and the rest is kept (`labeling.imports`); a draft pack that now has
    items to label is published, unless the campaign is paused.
    """
    suffix = ITEM_FILE_SUFFIXES.get(Path(filename or "").suffix.lower())
    if suffix is None:
        raise ApiError(_l("Items files are .jsonl or .csv."), field="items")
    with unit_of_work():
        campaign = own_campaign(organization_id, campaign_id)
        owned = campaign_packs(campaign.id)
        pack = next((p for p in owned if p.id == pack_id), None) if pack_id is not None else (owned[0] if owned else None)
        if pack is None:
            raise NotFound(_l("There is no such pack in this campaign."))
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            media_dir = root / "media"
            media_dir.mkdir()
            for name, data in media:
                safe = Path(name or "").name
                if safe:
                    (media_dir / safe).write_bytes(data)
            path = root / f"items{suffix}"
            path.write_bytes(content)
            try:
                report = imports.import_items(pack.id, path, media_dir=media_dir, by_basename=True, now=now)
            except LabelingError as error:
                raise ApiError(error.message, field="items") from None
        others = [p.status for p in owned if p.id != pack.id]
        if pack.status == "draft" and report.imported > report.gold + report.exam and "paused" not in others:
            pack = packs.publish_pack(pack.id, now=now)
        return UploadReport(pack.id, report.imported, report.gold, report.media_stored, report.problems, pack.status)


# --- progress and spend ---------------------------------------------------------------------------

@dataclass
class PackProgress:
    pack_id: int
    name: str
    task_type: str
    status: str
    items: int
    gold_items: int
    verified: int
    no_consensus: int
    remaining: int
    answers: int


@dataclass
class Progress:
    campaign_id: int
    status: str
    items: int
    verified: int
    no_consensus: int
    remaining: int
    answers: int
    percent_done: float
    spent_points: int
    budget_points: int | None
    deadline: datetime | None
    packs: list[PackProgress]


def spent_points(campaign_id: int) -> int:
    """Points paid to members for this campaign's verified answers (the ledger paid them; `paid_points` notes it)."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Submission.paid_points), 0))
            .join(TaskPack, TaskPack.id == Submission.pack_id).where(TaskPack.campaign_id == campaign_id)
        )
        or 0
    )


def progress(organization_id: int, campaign_id: int) -> Progress:
    campaign = own_campaign(organization_id, campaign_id)
    owned = campaign_packs(campaign.id)
    ids = [pack.id for pack in owned]
    counts = packs.pack_counts(ids) if ids else {}
    verified = dict(
        db.session.execute(select(VerifiedLabel.pack_id, func.count()).where(VerifiedLabel.pack_id.in_(ids)).group_by(VerifiedLabel.pack_id)).all()
    ) if ids else {}
    rows = []
    for pack in owned:
        count = counts.get(pack.id, packs.PackCounts())
        rows.append(PackProgress(
            pack.id, pack.name, pack.task_type, pack.status, count.items, count.gold, verified.get(pack.id, 0), count.no_consensus,
            count.unfinished, count.submissions,
        ))
    terms = campaign_terms(campaign.id)
    items = sum(row.items for row in rows)
    remaining = sum(row.remaining for row in rows)
    return Progress(
        campaign_id=campaign.id,
        status=campaign_state(campaign, [pack.status for pack in owned], terms),
        items=items,
        verified=sum(row.verified for row in rows),
        no_consensus=sum(row.no_consensus for row in rows),
        remaining=remaining,
        answers=sum(row.answers for row in rows),
        percent_done=round(100.0 * (items - remaining) / items, 1) if items else 0.0,
        spent_points=spent_points(campaign.id),
        budget_points=terms.budget_points if terms else None,
        deadline=terms.deadline if terms else None,
        packs=rows,
    )


# --- payments -------------------------------------------------------------------------------------

REVENUE_CURRENCY = "SAPIEN"  # payments in the reward token's base units feed the revenue share

def record_payment(
    organization_id: int, campaign_id: int, *, amount: int, currency: str, external_ref: str, key_id: int | None, now: datetime
) -> tuple[CampaignPayment, bool]:
    """Record a client's payment for a campaign once per `external_ref` (True when it is new), then hand it
    to the economy (`forward_payment_to_economy`)."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ApiError(_l("The amount is a whole number above zero (in the currency's smallest unit)."), field="amount")
    external_ref = (external_ref or "").strip()
    if not 1 <= len(external_ref) <= 200:
        raise ApiError(_l("Give the payment's reference (1 to 200 characters)."), field="external_ref")
    currency = (currency or "USD").strip().upper()
    if not currency.isalpha() or not 3 <= len(currency) <= 8:
        raise ApiError(_l("The currency is a code such as USD."), field="currency")
    if currency == REVENUE_CURRENCY and amount > revenue.LEDGER_MAX:
        raise ApiError(_l("That is more than the ledger can hold in one payment."), field="amount")
    with unit_of_work() as session:
        campaign = own_campaign(organization_id, campaign_id)
        existing = session.scalar(select(CampaignPayment).where(CampaignPayment.campaign_id == campaign.id, CampaignPayment.external_ref == external_ref))
        if existing is not None:
            return existing, False
        payment = CampaignPayment(
            campaign_id=campaign.id, organization_id=organization_id, amount=amount, currency=currency, external_ref=external_ref,
            recorded_by_key_id=key_id, created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(payment)
                session.flush()
        except IntegrityError:
            existing = session.scalar(select(CampaignPayment).where(CampaignPayment.campaign_id == campaign.id, CampaignPayment.external_ref == external_ref))
            return existing, False
    forward_payment_to_economy(payment.id, now=now)  # after the commit: the economy runs its own transaction
    return payment, True


def forward_payment_to_economy(payment_id: int, *, now: datetime) -> bool:
    """Hand a recorded payment to the economy's revenue share, once (True when it was shared now).

    Only payments in SAPIEN (token base units) are shared: the split pays members in tokens, and a payment in
    another currency is converted off the platform first, so it stays recorded for the accounts. The
    economy keys the distribution by (campaign, reference), so a second call shares nothing twice.
    """
    payment = db.session.get(CampaignPayment, payment_id)
    if payment is None or payment.forwarded_at is not None or payment.currency != REVENUE_CURRENCY:
        return False
    try:
        revenue.record_campaign_payment(payment.campaign_id, payment.amount, external_ref=f"api-payment:{payment.id}", actor_id=None, now=now)
    except EconomyError:  # the split is being fixed, say: the payment stays recorded, unshared, and can go again
        return False
    with unit_of_work():
        db.session.get(CampaignPayment, payment_id).forwarded_at = now
    return True


def payments(organization_id: int, campaign_id: int) -> list[CampaignPayment]:
    campaign = own_campaign(organization_id, campaign_id)
    return list(db.session.scalars(select(CampaignPayment).where(CampaignPayment.campaign_id == campaign.id).order_by(CampaignPayment.id)))


def paid_total(campaign_ids: list[int]) -> dict[int, int]:
    if not campaign_ids:
        return {}
    return dict(
        db.session.execute(
            select(CampaignPayment.campaign_id, func.sum(CampaignPayment.amount)).where(CampaignPayment.campaign_id.in_(campaign_ids))
            .group_by(CampaignPayment.campaign_id)
        ).all()
    )


# --- the dashboard --------------------------------------------------------------------------------

@dataclass
class DashboardRow:
    progress: Progress
    name: str
    mean_confidence: float | None
    gold_accuracy: float | None
    paid: int


def dashboard_rows(organization_id: int, limit: int = 100) -> list[DashboardRow]:
    """Each campaign's progress, mean confidence of its verified labels, members' gold accuracy, points
    spent and payments, for the organization dashboard."""
    found = list_campaigns(organization_id, after_id=None, limit=limit)
    ids = [campaign.id for campaign in found]
    if not ids:
        return []
    confidence = dict(db.session.execute(
        select(TaskPack.campaign_id, func.avg(VerifiedLabel.confidence)).join(TaskPack, TaskPack.id == VerifiedLabel.pack_id)
        .where(TaskPack.campaign_id.in_(ids)).group_by(TaskPack.campaign_id)
    ).all())
    gold = {
        campaign_id: (right, total) for campaign_id, right, total in db.session.execute(
            select(TaskPack.campaign_id, func.sum(case((Submission.gold_correct.is_(True), 1), else_=0)), func.count(Submission.id))
            .join(TaskPack, TaskPack.id == Submission.pack_id)
            .where(TaskPack.campaign_id.in_(ids), Submission.is_gold.is_(True), Submission.gold_correct.is_not(None))
            .group_by(TaskPack.campaign_id)
        )
    }
    paid = paid_total(ids)
    rows = []
    for campaign in found:
        right, total = gold.get(campaign.id, (0, 0))
        rows.append(DashboardRow(
            progress(organization_id, campaign.id), campaign.name,
            float(confidence[campaign.id]) if confidence.get(campaign.id) is not None else None,
            int(right or 0) / total if total else None, int(paid.get(campaign.id, 0) or 0),
        ))
    return rows
