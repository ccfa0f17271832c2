from __future__ import annotations

from flask import Blueprint, abort, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.database import utcnow
from sapien.notifications import service
from sapien.progression.forms import EmptyForm
from sapien.web import flash_message, redirect_to, render_page_or_fragment, render_poll, wants_fragment

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("")
@login_required
def index():
    return render_page_or_fragment(
        "notifications/index.html",
        "notifications/fragments/list.html",
        items=service.recent(current_user.id),
        form=EmptyForm(formdata=None),
    )


@bp.get("/bell")
@login_required
def bell():
    """The tiny fragment the nav bell polls: one COUNT over an index."""
    return render_poll(
        "notifications/index.html", "notifications/fragments/bell.html", unread=service.unread_count(current_user.id)
    )


def _after_change():
    if wants_fragment():
        return render_page_or_fragment(
            "notifications/index.html",
            "notifications/fragments/list.html",
            items=service.recent(current_user.id),
            form=EmptyForm(formdata=None),
            bell_oob=True,
            unread=service.unread_count(current_user.id),
        )
    return redirect_to(url_for("notifications.index"))


@bp.post("/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        service.mark_read(current_user.id, notification_id, utcnow())
    except LookupError:
        abort(404)
    return _after_change()


@bp.post("/read-all")
@login_required
def mark_all_read():
    if not EmptyForm().validate_on_submit():
        abort(400)
    count = service.mark_all_read(current_user.id, utcnow())
    flash_message(_("%(count)d notification(s) marked as read.", count=count))
    return _after_change()


@bp.app_context_processor
def _bell():
    """`unread_notifications()` for the nav bell: evaluated only where a template calls it."""
    if not current_user.is_authenticated:
        return {}
    return {"unread_notifications": lambda: service.unread_count(current_user.id)}
