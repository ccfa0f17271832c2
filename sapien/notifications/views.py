from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from sapien.database import utcnow
from sapien.forms import EmptyForm
from sapien.notifications import service
from sapien.notifications.models import Notification
from sapien.notifications.service import MESSAGES
from sapien.progression.badges import get_badge
from sapien.web import flash_message, redirect_to, render_page_or_fragment, render_poll, wants_fragment

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@dataclass(frozen=True)
class ShownNotification:
    id: int
    text: str
    link: str
    created_at: datetime
    unread: bool


REVIEW_OUTCOMES = {"accepted": _l("accepted"), "rejected": _l("rejected"), "corrected": _l("corrected")}


def _shown_params(notification: Notification) -> dict:
    """Params are stored as ids and codes; names are looked up (and translated) when shown."""
    params = dict(notification.params or {})
    if "badge" in params:
        badge = get_badge(params["badge"])
        params["badge"] = str(badge.name) if badge else params["badge"]
    if "outcome" in params:
        params["outcome"] = str(REVIEW_OUTCOMES.get(params["outcome"], params["outcome"]))
    return params


def render_text(notification: Notification) -> str:
    template = MESSAGES.get(notification.kind)
    if template is None:
        return notification.kind
    try:
        return str(template) % _shown_params(notification)
    except (KeyError, TypeError, ValueError):
        return str(template)


def shown(user_id: int) -> list[ShownNotification]:
    """The member's recent notifications as they read in the current language."""
    return [
        ShownNotification(id=n.id, text=render_text(n), link=n.link, created_at=n.created_at, unread=n.read_at is None)
        for n in service.recent(user_id)
    ]


@bp.get("")
@login_required
def index():
    return render_page_or_fragment(
        "notifications/index.html",
        "notifications/fragments/list.html",
        items=shown(current_user.id),
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
            items=shown(current_user.id),
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
