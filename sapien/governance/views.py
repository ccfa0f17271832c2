"""Governance pages: the proposals (open, passed, failed), a new proposal, a proposal with its live tally
and the ballot, and the moderators' execute, cancel and done actions. Lists and proposals are public."""

from __future__ import annotations

import json

from flask import Blueprint, abort, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from sapien.accounts.service import get_user
from sapien.database import as_utc, utcnow
from sapien.economy import parameters as store
from sapien.governance import proposals, rules, voting
from sapien.governance.forms import DoneForm, ProposalForm, ReasonForm, VoteForm
from sapien.web import (
    flash_message,
    form_status,
    redirect_to,
    render_page_or_fragment,
    render_poll,
    role_required,
    show_domain_error,
    wants_fragment,
)

bp = Blueprint("governance", __name__, url_prefix="/governance")
GROUPS = ("open", "passed", "failed")
VOTE_LABELS = {"for": _l("For"), "against": _l("Against"), "abstain": _l("Abstain")}


def _proposal_or_404(proposal_id: int):
    try:
        return proposals.get_proposal(proposal_id)
    except proposals.ProposalNotFound:
        abort(404)


def _tally_context(proposal) -> dict:
    now = utcnow()
    tally = voting.tally(proposal.id)
    return dict(
        proposal=proposal, tally=tally, buckets=voting.breakdown(proposal), quorum=proposals.quorum_power(proposal),
        passing=proposals.decide(proposal, tally.power("for"), tally.power("against"), tally.power("abstain")),
        closed=proposal.status != "voting" or now >= as_utc(proposal.closes_at), now=now, vote_labels=VOTE_LABELS,
    )


def _shown(name: str, value) -> str:
    """A value as the store shows it; as JSON for a setting the store no longer knows."""
    try:
        return store.display_value(name, value)
    except store.ParameterError:
        return json.dumps(value)


def _proposal_page(proposal, status: int = 200, **forms):
    context = _tally_context(proposal)
    me = current_user.id if current_user.is_authenticated else None
    author = get_user(proposal.author_id)
    context.update(
        author_name=author.display_name if author else "?",
        my_vote=voting.vote_of(me, proposal.id) if me else None,
        my_power=voting.frozen_power_of(me, proposal.id) if me else 0,
        refusal=rules.may_vote(me, context["now"]) if me else None,
        spec=store.PARAMETERS.get(proposal.parameter_name) if proposal.parameter_name else None,
        show_value=lambda value: _shown(proposal.parameter_name, value),
        is_moderator=current_user.is_authenticated and current_user.has_role("moderator"),
    )
    forms.setdefault("vote_form", VoteForm(formdata=None))
    forms.setdefault("cancel_form", ReasonForm(formdata=None))
    forms.setdefault("done_form", DoneForm(formdata=None))
    return render_page_or_fragment("governance/proposal.html", "governance/fragments/proposal.html", status=status, **context, **forms)


@bp.get("/")
def index():
    group = request.args.get("state", "open")
    if group not in GROUPS:
        group = "open"
    return render_page_or_fragment("governance/index.html", "governance/fragments/list.html", group=group,
                                   proposals=proposals.list_proposals(group), now=utcnow())


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    form = ProposalForm()
    standing = rules.standing(current_user.id)
    if form.validate_on_submit():
        try:
            proposal = proposals.create_proposal(current_user.id, form.draft(), utcnow())
        except proposals.GovernanceError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Your proposal is open for voting."))
            return redirect_to(url_for("governance.show", proposal_id=proposal.id))
    current = {name: store.display_value(name, store.get_parameter(name)) for name in store.PARAMETERS}
    return render_page_or_fragment("governance/new.html", "governance/fragments/proposal_form.html", status=form_status(form), form=form,
                                   standing=standing, parameters=store.PARAMETERS, current=current)


@bp.get("/<int:proposal_id>")
def show(proposal_id: int):
    return _proposal_page(_proposal_or_404(proposal_id))


@bp.get("/<int:proposal_id>/tally")
def tally(proposal_id: int):
    proposal = _proposal_or_404(proposal_id)
    if not wants_fragment():
        return _proposal_page(proposal)
    return render_poll("governance/proposal.html", "governance/fragments/tally.html", **_tally_context(proposal))


@bp.post("/<int:proposal_id>/vote")
@login_required
def vote(proposal_id: int):
    proposal = _proposal_or_404(proposal_id)
    form = VoteForm()
    if form.validate_on_submit():
        try:
            voting.cast_vote(current_user.id, proposal.id, form.choice.data, utcnow())
        except proposals.ProposalNotFound:
            abort(404)
        except proposals.GovernanceError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Your vote is counted. You can change it until the vote closes."))
            return redirect_to(url_for("governance.show", proposal_id=proposal.id))
    return _proposal_page(proposal, 422, vote_form=form)


@bp.post("/<int:proposal_id>/execute")
@role_required("moderator")
def execute(proposal_id: int):
    proposal = _proposal_or_404(proposal_id)
    try:
        proposal = proposals.execute_proposal(proposal.id, utcnow())
    except proposals.GovernanceError as error:
        flash_message(str(error.message), "error")
        return _proposal_page(proposal, 422)
    if proposal.status == "executed":
        flash_message(_("The change is applied."))
    else:
        flash_message(proposal.outcome_note, "error")
    return redirect_to(url_for("governance.show", proposal_id=proposal.id))


@bp.post("/<int:proposal_id>/cancel")
@login_required
def cancel(proposal_id: int):
    proposal = _proposal_or_404(proposal_id)
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            proposals.cancel_proposal(current_user.id, proposal.id, form.reason.data, utcnow(), moderator=current_user.has_role("moderator"))
        except proposals.NotAllowed:
            abort(403)
        except proposals.GovernanceError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("The proposal is cancelled."))
            return redirect_to(url_for("governance.show", proposal_id=proposal.id))
    return _proposal_page(proposal, 422, cancel_form=form)


@bp.post("/<int:proposal_id>/done")
@role_required("moderator")
def done(proposal_id: int):
    proposal = _proposal_or_404(proposal_id)
    form = DoneForm()
    if form.validate_on_submit():
        try:
            proposals.complete_task_type(current_user.id, proposal.id, form.note.data, utcnow())
        except proposals.GovernanceError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("The task-type proposal is marked done."))
            return redirect_to(url_for("governance.show", proposal_id=proposal.id))
    return _proposal_page(proposal, 422, done_form=form)
