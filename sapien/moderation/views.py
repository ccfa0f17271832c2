from __future__ import annotations

from flask import Blueprint, abort, current_app, g, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, user_logged_in

from sapien.database import utcnow
from sapien.extensions import db, limiter
from sapien.moderation import signals, users
from sapien.moderation.forms import (
    ACTION_LABELS,
    ROLE_LABELS,
    SCOPE_LABELS,
    AppealDecisionForm,
    AppealForm,
    BanAppealForm,
    BanForm,
    DecisionForm,
    RoleForm,
    UndoForm,
)
from sapien.moderation.models import Decision
from sapien.moderation.safety import appeals as trust_appeals
from sapien.moderation.safety import console, decisions, reversal
from sapien.progression.badges import get_badge
from sapien.quality.escalation import review_queue_health
from sapien.queue import enqueue_once, list_jobs, reconcile, retry_failed_job
from sapien.web import (
    flash_message,
    form_status,
    redirect_to,
    render_page_or_fragment,
    role_required,
    show_domain_error,
)

bp = Blueprint("moderation", __name__, url_prefix="/moderation")


@bp.get("/jobs")
@role_required("moderator")
def jobs():
    return render_page_or_fragment(
        "moderation/jobs.html", "moderation/fragments/jobs_table.html", jobs=list_jobs(), health=review_queue_health(utcnow())
    )


@bp.post("/jobs/<job_id>/retry")
@role_required("moderator")
def retry_job(job_id: str):
    if not retry_failed_job(job_id):
        abort(404)
    flash_message(_("Job %(job)s is queued again.", job=job_id))
    return redirect_to(url_for("moderation.jobs"))


@bp.post("/jobs/reconcile")
@role_required("moderator")
def reconcile_jobs():
    counts = reconcile()
    flash_message(_("Checked for pending work: %(count)d job(s) re-enqueued or already queued.", count=sum(counts.values())))
    return redirect_to(url_for("moderation.jobs"))


@bp.get("/users")
@role_required("moderator")
def user_list():
    query = request.args.get("q", "")[:64]
    return render_page_or_fragment(
        "moderation/users.html", "moderation/fragments/users_table.html", members=users.find_users(query), query=query,
        role_labels=ROLE_LABELS,
    )


def _render_user(user_id: int, role_form: RoleForm | None = None, ban_form: BanForm | None = None, status: int = 200):
    page = users.admin_page(current_user.id, user_id)
    if page is None:
        abort(404)
    return render_page_or_fragment(
        "moderation/user.html", "moderation/fragments/user.html", status=status, admin=page, member=page.user,
        role_form=role_form or RoleForm(page.grantable_roles, formdata=None, role=page.user.role),
        ban_form=ban_form or BanForm(formdata=None), role_labels=ROLE_LABELS,
    )


@bp.get("/users/<int:user_id>")
@role_required("moderator")
def user_detail(user_id: int):
    return _render_user(user_id)


@bp.post("/users/<int:user_id>/role")
@role_required("moderator")
def change_role(user_id: int):
    page = users.admin_page(current_user.id, user_id)
    if page is None:
        abort(404)
    form = RoleForm(page.grantable_roles)
    if form.validate_on_submit():
        try:
            user = users.change_role(current_user.id, user_id, form.role.data, form.reason.data or "", utcnow())
        except users.UserAdminForbidden:
            abort(403)
        except users.UserAdminError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("%(name)s is now: %(role)s.", name=user.username, role=ROLE_LABELS[user.role]))
            return redirect_to(url_for("moderation.user_detail", user_id=user_id))
    elif not page.can_change_role:
        abort(403)
    return _render_user(user_id, role_form=form, status=form_status(form))


def _ban_or_unban(user_id: int, action, done_message):
    if users.admin_page(current_user.id, user_id) is None:
        abort(404)
    form = BanForm()
    if form.validate_on_submit():
        try:
            user = action(current_user.id, user_id, form.reason.data, utcnow())
        except users.UserAdminForbidden:
            abort(403)
        except users.UserAdminError as error:
            show_domain_error(form, error)
        else:
            flash_message(done_message(user))
            return redirect_to(url_for("moderation.user_detail", user_id=user_id))
    return _render_user(user_id, ban_form=form, status=form_status(form))


@bp.post("/users/<int:user_id>/ban")
@role_required("moderator")
def ban_user(user_id: int):
    return _ban_or_unban(user_id, users.ban, lambda user: _("%(name)s is banned and signed out everywhere.", name=user.username))


@bp.post("/users/<int:user_id>/unban")
@role_required("moderator")
def unban_user(user_id: int):
    return _ban_or_unban(user_id, users.unban, lambda user: _("%(name)s is no longer banned.", name=user.username))


# --- trust signals: the device cookie and sign-up/sign-in events ----------------------------------------

def _device_id() -> str:
    if "device_id" not in g:
        g.device_id = signals.valid_device_id(request.cookies.get(signals.DEVICE_COOKIE)) or signals.new_device_id()
    return g.device_id


def _record_sign_in(app, user, **_extra) -> None:
    kind = "sign_up" if request.endpoint == "accounts.signup" else "login"
    signals.record_signal(user.id, kind, request.remote_addr or "", request.user_agent.string, _device_id(), utcnow())


def _set_device_cookie(response):
    if request.cookies.get(signals.DEVICE_COOKIE) is None and not request.path.startswith(("/static/", "/api/", "/healthz")):
        response.set_cookie(signals.DEVICE_COOKIE, _device_id(), max_age=signals.DEVICE_COOKIE_DAYS * 86400, httponly=True,
                            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


@bp.record_once
def _wire_signals(state) -> None:
    user_logged_in.connect(_record_sign_in, state.app, weak=False)
    state.app.after_request(_set_device_cookie)


# --- trust & safety console --------------------------------------------------------------------------

@bp.get("/flags")
@role_required("moderator")
def flags():
    return render_page_or_fragment("moderation/flags.html", "moderation/fragments/flags.html", rows=console.flag_queue(), undo_form=UndoForm(formdata=None))


@bp.post("/flags/scan")
@role_required("moderator")
def scan():
    from sapien.moderation.safety.scan import SCAN_JOB, scan_job_id

    enqueue_once(SCAN_JOB, job_id=f"{scan_job_id(utcnow())}-now")
    flash_message(_("A scan is queued: new flags appear here when it has run."))
    return redirect_to(url_for("moderation.flags"))


def _decision_form(page, formdata=None):
    form = DecisionForm(
        [(m.id, f"@{m.username}") for m in page.members], console.pack_choices(),
        **({} if formdata is not None else {"formdata": None, "members": [m.id for m in page.members if not m.has_role("moderator")]}),
    )
    return form


def _render_trust(user_id: int, form=None, undo_form=None, status: int = 200, undo_for: int | None = None):
    page = console.trust_page(user_id, utcnow())
    if page is None:
        abort(404)
    return render_page_or_fragment(
        "moderation/trust.html", "moderation/fragments/trust.html", status=status, tp=page,
        form=form or _decision_form(page), undo_form=undo_form or UndoForm(formdata=None),
        action_labels=ACTION_LABELS, scope_labels=SCOPE_LABELS, undo_for=undo_for, badge_name=_badge_name,
    )


def _badge_name(slug: str) -> str:
    badge = get_badge(slug)
    return str(badge.name) if badge else slug


@bp.get("/trust/<int:user_id>")
@role_required("moderator")
def trust(user_id: int):
    return _render_trust(user_id)


def _flash_undone(undone: list[dict]) -> None:
    """What one or more undos did, for the moderator (summaries of older undos lack the indirect rewards)."""
    flash_message(_("Damage undone: %(points)d points reversed, %(items)d items re-queued, %(labels)d labels recomputed, %(reviews)d reviews re-opened.",
                    points=sum(u["points_reversed"] for u in undone), items=sum(u["items_requeued"] for u in undone),
                    labels=sum(u["labels_recomputed"] for u in undone), reviews=sum(u["reviews_reopened"] for u in undone)))
    rewards = sum(len(u.get("rewards_reversed", [])) for u in undone)
    badges = sum(len(u.get("badges_revoked", [])) for u in undone)
    if rewards or badges:
        flash_message(_("Earned indirectly and taken back: %(rewards)d rewards (%(points)d points), %(badges)d badges revoked.",
                        rewards=rewards, points=sum(u.get("reward_points_reversed", 0) for u in undone), badges=badges))


@bp.post("/trust/<int:user_id>/decide")
@role_required("moderator")
def decide(user_id: int):
    page = console.trust_page(user_id, utcnow())
    if page is None:
        abort(404)
    form = _decision_form(page, formdata=request.form)
    if form.validate_on_submit():
        now = utcnow()
        draft = decisions.DecisionDraft(
            action=form.action.data, reason=form.reason.data, scope=form.scope.data,
            pack_id=int(form.pack_id.data) if form.pack_id.data else None, days=form.days.data,
        )
        try:
            made = decisions.decide_many(current_user.id, form.members.data, draft, now)
            undone = [reversal.undo_damage(d.id, current_user.id, now) for d in made if form.undo.data and d.action in ("restrict", "ban")]
        except decisions.DecisionError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Decided for %(count)d member(s): %(action)s.", count=len(made), action=ACTION_LABELS[draft.action]))
            if undone:
                _flash_undone(undone)
            return redirect_to(url_for("moderation.trust", user_id=user_id))
    return _render_trust(user_id, form=form, status=form_status(form))


@bp.post("/decisions/<int:decision_id>/undo")
@role_required("moderator")
def undo(decision_id: int):
    decision = db.session.get(Decision, decision_id)
    if decision is None:
        abort(404)
    form = UndoForm()
    if form.validate_on_submit():
        try:
            done = reversal.undo_damage(decision_id, current_user.id, utcnow())
        except decisions.DecisionError as error:
            show_domain_error(form, error)
        else:
            _flash_undone([done])
            return redirect_to(url_for("moderation.trust", user_id=decision.user_id))
    return _render_trust(decision.user_id, undo_form=form, status=form_status(form), undo_for=decision_id)


@bp.get("/appeals")
@role_required("moderator")
def appeals():
    rows = trust_appeals.open_appeals(current_user.id)
    return render_page_or_fragment("moderation/appeals.html", "moderation/fragments/appeals.html", rows=rows,
                                   forms={a.id: AppealDecisionForm(formdata=None, prefix=f"a{a.id}") for a, _d, _u in rows},
                                   action_labels=ACTION_LABELS)


@bp.post("/appeals/<int:appeal_id>")
@role_required("moderator")
def decide_appeal(appeal_id: int):
    form = AppealDecisionForm(prefix=f"a{appeal_id}")
    rows = trust_appeals.open_appeals(current_user.id)
    if form.validate_on_submit():
        try:
            row = trust_appeals.decide_appeal(current_user.id, appeal_id, form.decision.data == "overturn", form.note.data, utcnow())
        except trust_appeals.AppealError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("The decision is overturned.") if row.status == "overturned" else _("The decision stands."))
            return redirect_to(url_for("moderation.appeals"))
    forms = {a.id: AppealDecisionForm(formdata=None, prefix=f"a{a.id}") for a, _d, _u in rows}
    forms[appeal_id] = form
    return render_page_or_fragment("moderation/appeals.html", "moderation/fragments/appeals.html", status=form_status(form), rows=rows,
                                   forms=forms, action_labels=ACTION_LABELS)


# --- the member's side -------------------------------------------------------------------------------

standing_bp = Blueprint("standing", __name__)


def _render_standing(forms=None, status: int = 200):
    restrictions, made, appealed = console.member_standing(current_user.id, utcnow())
    forms = forms or {}
    return render_page_or_fragment(
        "moderation/standing.html", "moderation/fragments/standing.html", status=status, restrictions=restrictions, decisions=made,
        appeals=appealed, forms={d.id: forms.get(d.id) or AppealForm(formdata=None, prefix=f"d{d.id}") for d in made},
        action_labels=ACTION_LABELS, scope_labels=SCOPE_LABELS,
    )


@standing_bp.get("/standing")
@login_required
def standing():
    return _render_standing()


@standing_bp.post("/standing/<int:decision_id>/appeal")
@login_required
def appeal(decision_id: int):
    form = AppealForm(prefix=f"d{decision_id}")
    if form.validate_on_submit():
        try:
            trust_appeals.appeal(current_user.id, decision_id, form.message.data, utcnow())
        except trust_appeals.AppealError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Your appeal is sent. A moderator who did not make the decision will hear it."))
            return redirect_to(url_for("standing.standing"))
    return _render_standing({decision_id: form}, status=form_status(form))


@standing_bp.route("/appeal", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"], methods=["POST"], scope="ban-appeal-address")
def ban_appeal():
    form = BanAppealForm()
    if form.validate_on_submit():
        try:
            trust_appeals.appeal_ban(form.login.data, form.password.data, form.message.data, utcnow())
        except trust_appeals.AppealError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Your appeal is sent. A moderator who did not make the decision will hear it."))
            return redirect_to(url_for("standing.ban_appeal"))
    return render_page_or_fragment("moderation/ban_appeal.html", "moderation/fragments/ban_appeal.html", status=form_status(form), form=form)


@bp.context_processor
def _moderator():
    return {"is_moderator": current_user.is_authenticated and current_user.has_role("moderator")}
