"""Proposals: open one (and freeze the voting power), close it (tally, pass or fail, queue behind the
timelock), execute it through the economy's parameter store, cancel it.

States
------
``voting`` → ``passed`` | ``failed`` when the period ends (`close_proposal`). A passed parameter change is
``queued`` in the same step, executable once its timelock has run out (``executable_at``); then
`execute_proposal` (the job ``jobs.governance.execute_proposal``) applies it with ``set_parameter(…,
proposal_id=…)``, so the parameter's history names the vote, and it is ``executed``. A passed task-type
proposal stays ``passed`` until a moderator marks it done (``executed``). Moderators may cancel a proposal
that has not executed (``cancelled``), with a reason; so may its author while it is being voted on.

Deciding
--------
Quorum: the power that took part (for, against and abstain) is at least ``quorum_bp`` of the frozen
total. Threshold: the power for is more than ``threshold_bp`` of the power for and against (abstentions
count toward the quorum only; a tie fails). Both are the settings when the proposal opened.

Every transition locks the proposal row, so closing, voting, executing and cancelling take turns, and each
is safe to run twice: a proposal already past the step is returned as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from sapien.database import as_utc, is_postgres, unit_of_work
from sapien.economy import parameters as store
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.governance import rules
from sapien.governance.models import PowerSnapshot, Proposal
from sapien.governance.settings import setting
from sapien.moderation.service import record as audit
from sapien.notifications.service import notify

TITLE_MAX = 120
RATIONALE_MAX = 4000
TASK_TYPE_MAX = 64
NOTE_MAX = 500
OPEN_STATUSES = ("voting",)
PASSED_STATUSES = ("passed", "queued", "executed")
FAILED_STATUSES = ("failed", "cancelled")


class GovernanceError(DomainError):
    pass


class ProposalNotFound(GovernanceError):
    pass


class NotAllowed(GovernanceError):
    """The member may not do that to this proposal (shown as a 403)."""


class TimelockNotOver(GovernanceError):
    pass


@dataclass(frozen=True)
class ProposalDraft:
    """What a member proposes. `new_value` is the typed value (see `parse_value`)."""

    kind: str
    title: str
    rationale: str = ""
    parameter_name: str | None = None
    new_value: object = None
    task_type_name: str | None = None


def parse_value(parameter_name: str, raw: str) -> object:
    """A typed value from what a member wrote, by the parameter's kind (tokens as decimals, JSON …)."""
    try:
        return store.parse_value(parameter_name, raw)
    except store.ParameterError as error:
        raise GovernanceError(error.message, field="new_value") from None


def get_proposal(proposal_id: int) -> Proposal:
    proposal = db.session.get(Proposal, proposal_id)
    if proposal is None:
        raise ProposalNotFound(_l("There is no such proposal."))
    return proposal


def _locked(proposal_id: int) -> Proposal:
    proposal = db.session.scalar(
        select(Proposal).where(Proposal.id == proposal_id).with_for_update().execution_options(populate_existing=True)
    )
    if proposal is None:
        raise ProposalNotFound(_l("There is no such proposal."))
    return proposal


def _checked(draft: ProposalDraft) -> ProposalDraft:
    title = (draft.title or "").strip()
    rationale = (draft.rationale or "").strip()
    if not title:
        raise GovernanceError(_l("Give the proposal a title."), field="title")
    if len(title) > TITLE_MAX:
        raise GovernanceError(_l("Keep the title under %(count)s characters.", count=TITLE_MAX), field="title")
    if len(rationale) > RATIONALE_MAX:
        raise GovernanceError(_l("Keep the rationale under %(count)s characters.", count=RATIONALE_MAX), field="rationale")
    if draft.kind == "parameter":
        name = draft.parameter_name or ""
        if name not in store.PARAMETERS:
            raise GovernanceError(_l("Choose a setting from the list."), field="parameter_name")
        try:
            store.PARAMETERS[name].validate(draft.new_value)
        except store.ParameterError as error:
            raise GovernanceError(error.message, field="new_value") from None
        if draft.new_value == store.get_parameter(name):
            raise GovernanceError(_l("That is already the setting's value."), field="new_value")
        return ProposalDraft("parameter", title, rationale, parameter_name=name, new_value=draft.new_value)
    if draft.kind == "task_type":
        name = (draft.task_type_name or "").strip()
        if not name:
            raise GovernanceError(_l("Name the task type you propose."), field="task_type_name")
        if len(name) > TASK_TYPE_MAX:
            raise GovernanceError(_l("Keep the task type's name under %(count)s characters.", count=TASK_TYPE_MAX), field="task_type_name")
        return ProposalDraft("task_type", title, rationale, task_type_name=name)
    raise GovernanceError(_l("Choose what the proposal changes."), field="kind")


def create_proposal(author_id: int, draft: ProposalDraft, now: datetime) -> Proposal:
    """Open a proposal for voting: check the author's standing and the draft, then freeze every member's
    voting power in the same transaction."""
    draft = _checked(draft)
    standing = rules.standing(author_id)
    if not standing.may_propose:
        raise NotAllowed(_l("You cannot propose yet: %(missing)s", missing=" ".join(standing.missing)))
    if rules.flagged(author_id, now):
        raise NotAllowed(_l("Your account is under review by trust & safety: you cannot propose until it is cleared."))
    with unit_of_work() as session:
        proposal = Proposal(
            author_id=author_id, kind=draft.kind, title=draft.title, rationale=draft.rationale,
            parameter_name=draft.parameter_name, new_value=draft.new_value,
            old_value=store.get_parameter(draft.parameter_name) if draft.parameter_name else None,
            task_type_name=draft.task_type_name, status="voting", opened_at=now,
            closes_at=now + timedelta(hours=setting("governance.voting_period_hours")),
            quorum_bp=setting("governance.quorum_bp"), threshold_bp=setting("governance.pass_threshold_bp"),
            timelock_seconds=setting("governance.timelock_hours") * 3600,
        )
        session.add(proposal)
        session.flush()
        proposal.eligible_voters, proposal.total_power = freeze_voting_power(proposal.id)
    return proposal


# Every member's power in one statement: their staked positions (economy_stakes, status "staked") in
# thousandths of a token × (500 + reputation) / 1000.
_FREEZE = (
    "INSERT INTO governance_power_snapshots (proposal_id, user_id, stake, reputation, power)"
    " SELECT :proposal, s.user_id, s.stake, COALESCE(r.score, 500), (s.stake / :unit) * (500 + COALESCE(r.score, 500)) / 1000"
    " FROM (SELECT user_id, CAST(SUM(amount) AS BIGINT) AS stake FROM economy_stakes WHERE status = 'staked' GROUP BY user_id) s"
    " JOIN users u ON u.id = s.user_id LEFT JOIN reputations r ON r.user_id = s.user_id"
    " WHERE NOT u.is_banned AND (s.stake / :unit) * (500 + COALESCE(r.score, 500)) / 1000 > 0"
)


def freeze_voting_power(proposal_id: int) -> tuple[int, int]:
    """Write the proposal's power snapshot (inside the caller's transaction); returns (members, total)."""
    session = db.session
    statement = _FREEZE if is_postgres() else _FREEZE.replace("/ :unit", "/ CAST(:unit AS INTEGER)")
    session.execute(text(statement), {"proposal": proposal_id, "unit": rules.POWER_UNIT})
    members, total = session.execute(
        select(func.count(), func.coalesce(func.sum(PowerSnapshot.power), 0)).where(PowerSnapshot.proposal_id == proposal_id)
    ).one()
    return int(members), int(total)


def decide(proposal: Proposal, power_for: int, power_against: int, power_abstain: int) -> bool:
    """Does this tally pass under the proposal's frozen rules? (Quorum, then threshold; a tie fails.)"""
    cast = power_for + power_against + power_abstain
    if proposal.total_power <= 0 or cast * 10_000 < proposal.quorum_bp * proposal.total_power:
        return False
    decisive = power_for + power_against
    return decisive > 0 and power_for * 10_000 > proposal.threshold_bp * decisive


def quorum_power(proposal: Proposal) -> int:
    """The power that must take part for the vote to count (rounded up)."""
    return -(-proposal.quorum_bp * proposal.total_power // 10_000)


def close_proposal(proposal_id: int, now: datetime) -> Proposal:
    """End the vote once its period is over: write the final tally, pass or fail it, and queue a passed
    parameter change behind its timelock. Before the close it changes nothing; after it, nothing more."""
    from sapien.governance.voting import tally

    with unit_of_work():
        proposal = _locked(proposal_id)
        if proposal.status != "voting" or now < as_utc(proposal.closes_at):
            return proposal
        result = tally(proposal_id)
        proposal.power_for, proposal.power_against, proposal.power_abstain = result.power("for"), result.power("against"), result.power("abstain")
        proposal.voters = result.voters
        proposal.decided_at = now
        if not decide(proposal, proposal.power_for, proposal.power_against, proposal.power_abstain):
            proposal.status = "failed"
        elif proposal.kind == "parameter":
            proposal.status = "queued"
            # The timelock runs from the end of the period, not from whenever the count was written.
            proposal.executable_at = as_utc(proposal.closes_at) + timedelta(seconds=proposal.timelock_seconds)
        else:
            proposal.status = "passed"
        _tell_author(proposal, "proposal_failed" if proposal.status == "failed" else "proposal_passed", now)
    return proposal


def execute_proposal(proposal_id: int, now: datetime) -> Proposal:
    """Apply a queued parameter change once its timelock is over, through the parameter store (its history
    row names this proposal). Before the timelock: `TimelockNotOver`. Executed already: nothing more. A
    value the store no longer accepts (other settings moved meanwhile) cancels the proposal with why."""
    with unit_of_work():
        proposal = _locked(proposal_id)
        if proposal.status == "executed":
            return proposal
        if proposal.status != "queued":
            raise GovernanceError(_l("Only a passed proposal waiting out its timelock can be executed."))
        if now < as_utc(proposal.executable_at):
            raise TimelockNotOver(
                _l("This change waits out its timelock: it can be applied from %(when)s UTC.", when=f"{as_utc(proposal.executable_at):%Y-%m-%d %H:%M}")
            )
        try:
            with db.session.begin_nested():
                change = store.set_parameter(
                    proposal.parameter_name, proposal.new_value, actor_id=None, now=now, proposal_id=proposal.id,
                    reason=str(_l("Proposal #%(id)s passed: %(title)s", id=proposal.id, title=proposal.title))[: store.MAX_REASON],
                )
        except store.ParameterError as error:
            proposal.status = "cancelled"
            proposal.cancelled_at = now
            proposal.outcome_note = str(_l("The change could not be applied: %(error)s", error=error.message))[:NOTE_MAX]
            return proposal
        proposal.status = "executed"
        proposal.executed_at = now
        proposal.parameter_change_id = change.id
        _tell_author(proposal, "proposal_applied", now)
    return proposal


def _tell_author(proposal: Proposal, kind: str, now: datetime) -> None:
    notify(proposal.author_id, kind, {"title": proposal.title}, link=f"/governance/{proposal.id}", key=f"governance:{proposal.id}:{kind}", now=now)


def cancel_proposal(actor_id: int, proposal_id: int, reason: str, now: datetime, *, moderator: bool) -> Proposal:
    """Cancel a proposal that has not executed, with a reason (audited). Its author may cancel it while it is
    being voted on; moderators at any time before it executes."""
    reason = (reason or "").strip()
    if not reason:
        raise GovernanceError(_l("Give a reason: it is shown on the proposal."), field="reason")
    if len(reason) > NOTE_MAX:
        raise GovernanceError(_l("Keep the reason under %(count)s characters.", count=NOTE_MAX), field="reason")
    with unit_of_work():
        proposal = _locked(proposal_id)
        if not moderator and not (proposal.author_id == actor_id and proposal.status == "voting"):
            raise NotAllowed(_l("Only its author (while it is being voted on) or a moderator can cancel a proposal."))
        if proposal.status not in ("voting", "passed", "queued"):
            raise GovernanceError(_l("This proposal is already decided and cannot be cancelled."))
        proposal.status = "cancelled"
        proposal.cancelled_at = now
        proposal.outcome_note = reason
        audit(actor_id, "governance.cancel", f"proposal:{proposal_id}", reason, now)
    return proposal


def complete_task_type(actor_id: int, proposal_id: int, note: str, now: datetime) -> Proposal:
    """A moderator records what was done about a passed task-type proposal; it becomes executed (audited)."""
    note = (note or "").strip()
    if not note:
        raise GovernanceError(_l("Say what was done: it is shown on the proposal."), field="note")
    if len(note) > NOTE_MAX:
        raise GovernanceError(_l("Keep the note under %(count)s characters.", count=NOTE_MAX), field="note")
    with unit_of_work():
        proposal = _locked(proposal_id)
        if proposal.kind != "task_type" or proposal.status != "passed":
            raise GovernanceError(_l("Only a passed task-type proposal can be marked done."))
        proposal.status = "executed"
        proposal.executed_at = now
        proposal.outcome_note = note
        audit(actor_id, "governance.task_type_done", f"proposal:{proposal_id}", note, now)
        _tell_author(proposal, "proposal_applied", now)
    return proposal


def list_proposals(group: str, limit: int = 50) -> list[Proposal]:
    """Proposals by group: "open" (being voted on), "passed" (passed, queued, executed), "failed" (failed,
    cancelled); newest first."""
    statuses = {"open": OPEN_STATUSES, "passed": PASSED_STATUSES, "failed": FAILED_STATUSES}[group]
    return list(db.session.scalars(
        select(Proposal).where(Proposal.status.in_(statuses)).order_by(Proposal.opened_at.desc(), Proposal.id.desc()).limit(limit)
    ))


def due_to_close(now: datetime, limit: int = 1000) -> list[int]:
    return list(db.session.scalars(
        select(Proposal.id).where(Proposal.status == "voting", Proposal.closes_at <= now).order_by(Proposal.id).limit(limit)
    ))


def due_to_execute(now: datetime, limit: int = 1000) -> list[int]:
    return list(db.session.scalars(
        select(Proposal.id).where(Proposal.status == "queued", Proposal.executable_at <= now).order_by(Proposal.id).limit(limit)
    ))
