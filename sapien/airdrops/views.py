from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.airdrops import claims, freezing, snapshots
from sapien.airdrops.config import CRITERIA, CRITERION_LABELS, ConfigError, parse_as_of, parse_config, units_to_tokens
from sapien.airdrops.forms import config_from_form
from sapien.airdrops.models import AirdropSnapshot
from sapien.airdrops.sybil import RULE_LABELS, reason_text
from sapien.database import utcnow
from sapien.extensions import db
from sapien.web import flash_message, redirect_to, render_page_or_fragment, render_poll, role_required

bp = Blueprint("airdrops", __name__, url_prefix="/airdrops")


def _context(**extra):
    return {"criteria": CRITERIA, "labels": CRITERION_LABELS, "rule_labels": RULE_LABELS, "tokens": units_to_tokens, "reason_text": reason_text, **extra}


def _snapshot_or_404(snapshot_id: int) -> AirdropSnapshot:
    snapshot = db.session.get(AirdropSnapshot, snapshot_id)
    if snapshot is None:
        abort(404)
    return snapshot


@bp.get("/manage")
@role_required("moderator")
def manage():
    return render_page_or_fragment(
        "airdrops/manage.html", "airdrops/fragments/snapshot_list.html",
        **_context(snapshots=snapshots.recent_snapshots(), form=config_from_form(request.args), errors=[], preview=None, guilds=claims.guild_choices()),
    )


def _config_or_errors(now: datetime):
    data = config_from_form(request.form)
    try:
        return data, parse_config(data, now), []
    except ConfigError as error:
        return data, None, error.problems


@bp.post("/preview")
@role_required("moderator")
def preview():
    now = utcnow()
    data, config, errors = _config_or_errors(now)
    found = snapshots.preview(config, now) if config else None
    status = 422 if errors else 200
    return render_page_or_fragment(
        "airdrops/manage.html", "airdrops/fragments/preview.html", status=status,
        **_context(snapshots=snapshots.recent_snapshots(), form=data, errors=errors, preview=found, guilds=claims.guild_choices()),
    )


@bp.post("/snapshots")
@role_required("moderator")
def create():
    now = utcnow()
    data, config, errors = _config_or_errors(now)
    if errors:
        return render_page_or_fragment(
            "airdrops/manage.html", "airdrops/fragments/preview.html", status=422,
            **_context(snapshots=snapshots.recent_snapshots(), form=data, errors=errors, preview=None, guilds=claims.guild_choices()),
        )
    snapshot = snapshots.create_snapshot(config, current_user.id, now)
    flash_message(_("Snapshot %(name)s is running.", name=snapshot.name))
    return redirect_to(url_for("airdrops.snapshot", snapshot_id=snapshot.id))


@bp.get("/snapshots/<int:snapshot_id>")
@role_required("moderator")
def snapshot(snapshot_id: int):
    found = _snapshot_or_404(snapshot_id)
    others = [other for other in snapshots.recent_snapshots() if other.id != snapshot_id and other.status == "done"]
    return render_page_or_fragment(
        "airdrops/snapshot.html", "airdrops/fragments/results.html",
        **_context(snapshot=found, entries=snapshots.entries(snapshot_id) if found.status == "done" else [], others=others, me_id=current_user.id),
    )


@bp.get("/snapshots/<int:snapshot_id>/status")
@role_required("moderator")
def status(snapshot_id: int):
    found = _snapshot_or_404(snapshot_id)
    return render_poll("airdrops/snapshot_status.html", "airdrops/fragments/status.html", **_context(snapshot=found))


@bp.get("/compare")
@role_required("moderator")
def compare():
    left = _snapshot_or_404(request.args.get("left", type=int) or 0)
    right = _snapshot_or_404(request.args.get("right", type=int) or 0)
    rows = snapshots.compare(left.id, right.id)
    return render_page_or_fragment("airdrops/compare.html", "airdrops/fragments/compare.html", **_context(left=left, right=right, rows=rows))


def _freeze_step(snapshot_id: int, step) -> Response:
    _snapshot_or_404(snapshot_id)
    try:
        step(snapshot_id, current_user.id, utcnow())
    except freezing.FreezeError as error:
        flash_message(str(error), "error")
    else:
        flash_message(_("Done: the step is in the audit log."))
    return redirect_to(url_for("airdrops.snapshot", snapshot_id=snapshot_id))


@bp.post("/snapshots/<int:snapshot_id>/propose")
@role_required("moderator")
def propose(snapshot_id: int):
    return _freeze_step(snapshot_id, freezing.propose_freeze)


@bp.post("/snapshots/<int:snapshot_id>/approve")
@role_required("moderator")
def approve(snapshot_id: int):
    return _freeze_step(snapshot_id, freezing.approve_freeze)


@bp.post("/snapshots/<int:snapshot_id>/publish")
@role_required("moderator")
def publish(snapshot_id: int):
    _snapshot_or_404(snapshot_id)
    deadline = parse_as_of(request.form.get("claim_deadline", ""))
    try:
        if deadline is None:
            raise claims.ClaimError(_("The claim deadline is not a date and time."))
        claims.request_publish(snapshot_id, current_user.id, deadline, utcnow())
    except claims.ClaimError as error:
        flash_message(str(error), "error")
    else:
        flash_message(_("Publishing: the distributor is deployed and funded by a job."))
    return redirect_to(url_for("airdrops.public", snapshot_id=snapshot_id))


@bp.post("/appeals/<int:appeal_id>")
@role_required("moderator")
def decide_appeal(appeal_id: int):
    try:
        claims.decide_appeal(appeal_id, current_user.id, request.form.get("decision") == "uphold", utcnow())
    except claims.ClaimError as error:
        flash_message(str(error), "error")
    return redirect_to(url_for("airdrops.index"))


# --- public and member pages ----------------------------------------------------------------------

@bp.get("/")
def index():
    return render_page_or_fragment(
        "airdrops/index.html", "airdrops/fragments/index.html",
        **_context(airdrops=claims.frozen_snapshots(), appeals=claims.appeals_summary(),
                   open_appeals=claims.open_appeals() if current_user.is_authenticated and current_user.has_role("moderator") else []),
    )


def _frozen_or_404(snapshot_id: int) -> AirdropSnapshot:
    found = _snapshot_or_404(snapshot_id)
    if not found.frozen:
        abort(404)
    return found


@bp.get("/<int:snapshot_id>")
def public(snapshot_id: int):
    found = _frozen_or_404(snapshot_id)
    state = None
    if found.distributor_address:
        from sapien.chain.airdrop_chain import distributor_state

        try:
            state = distributor_state(found.distributor_address)
        except Exception:  # noqa: BLE001 - the chain being down only hides the live figures
            state = None
    allocated = int(found.allocated_amount)
    claimed_percent = (state.total_claimed * 100 // allocated) if state and allocated else 0
    return render_page_or_fragment(
        "airdrops/public.html", "airdrops/fragments/public.html",
        **_context(snapshot=found, state=state, claimed_percent=claimed_percent, appeals=claims.appeals_summary(snapshot_id), now=datetime.now(UTC)),
    )


@bp.get("/<int:snapshot_id>/tree.json")
def tree(snapshot_id: int):
    found = _frozen_or_404(snapshot_id)
    response = Response(found.tree_dump or "{}", mimetype="application/json")
    response.headers["Content-Disposition"] = f"attachment; filename=airdrop-{snapshot_id}-tree.json"
    return response


@bp.get("/<int:snapshot_id>/allocations.csv")
def allocations(snapshot_id: int):
    found = _frozen_or_404(snapshot_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["address", "amount"])
    for item in json.loads(found.tree_dump or '{"values": []}')["values"]:
        writer.writerow(item["value"])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=airdrop-{snapshot_id}-allocations.csv"
    return response


@bp.get("/<int:snapshot_id>/claim")
@login_required
def claim(snapshot_id: int):
    mine = claims.member_allocation(snapshot_id, current_user.id)
    if mine is None:
        abort(404)
    call, claimed = None, None
    if mine.entry is not None and mine.entry.tree_index is not None and mine.snapshot.distributor_address:
        from sapien.chain.airdrop_chain import claim_call, has_claimed

        call = claim_call(mine.snapshot.distributor_address, mine.entry.address, int(mine.entry.amount), mine.proof)
        try:
            claimed = has_claimed(mine.snapshot.distributor_address, mine.entry.address)
        except Exception:  # noqa: BLE001 - unknown while the chain is down
            claimed = None
    return render_page_or_fragment(
        "airdrops/claim.html", "airdrops/fragments/claim.html", **_context(mine=mine, call=call, claimed=claimed),
    )


@bp.post("/<int:snapshot_id>/appeal")
@login_required
def appeal(snapshot_id: int):
    _frozen_or_404(snapshot_id)
    try:
        claims.file_appeal(snapshot_id, current_user.id, request.form.get("message", ""), utcnow())
    except claims.ClaimError as error:
        flash_message(str(error), "error")
    else:
        flash_message(_("Your appeal is recorded; a moderator will look at it."))
    return redirect_to(url_for("airdrops.claim", snapshot_id=snapshot_id))


@bp.post("/guilds/<int:guild_id>/recognize")
@role_required("moderator")
def recognize_guild(guild_id: int):
    from sapien.guilds.models import Guild

    if db.session.get(Guild, guild_id) is None:
        abort(404)
    recognized = request.form.get("recognized") == "1"
    claims.set_recognized(guild_id, recognized, current_user.id, utcnow())
    flash_message(_("The guild is recognized for airdrops.") if recognized else _("The guild is no longer recognized for airdrops."))
    return redirect_to(request.referrer if request.referrer and request.referrer.startswith(request.host_url) else url_for("airdrops.manage"))
