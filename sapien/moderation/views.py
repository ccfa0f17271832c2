from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from sapien.database import utcnow
from sapien.moderation import users
from sapien.moderation.forms import ROLE_LABELS, BanForm, RoleForm
from sapien.quality.escalation import review_queue_health
from sapien.queue import list_jobs, reconcile, retry_failed_job
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


@bp.context_processor
def _moderator():
    return {"is_moderator": current_user.is_authenticated and current_user.has_role("moderator")}
