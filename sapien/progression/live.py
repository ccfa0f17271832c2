"""Live updates for the signed-in member, riding on whatever htmx request changed their progress.

This is the web layer's side of events: services never touch request state, they send signals after
their commit (`ledger_entry_posted`, `level_reached`, `quests_moved`, `notification_added`), and the
listeners below (connected in `sapien.listeners`) mark request-scoped flags when the member behind the
current request is the one affected, so a rolled-back change marks nothing. An `after_request` hook registered by `create_app`
then appends out-of-band swaps to that request's htmx response: the nav `#statusbar` (level, XP bar,
balances, whose figures `app.js` counts up), the bell when the request notified the member (the bell's
own poll covers the rest) and the celebrations: on a level-up a dialog with the new level's emblem and
what it unlocks; a toast with a small animation for a badge earned (`badge_awarded`), a quest completed
(`quest_completed`) or a streak milestone (`streak_extended`), in the `aria-live` flashes region. When quest progress moved it adds the client event
`quests-changed` (HX-Trigger), on which every quest list on the page refetches itself. A plain (non-htmx) request gets the level-up as a flash
message instead, shown on the next page. Work done outside a request (jobs) marks nothing.
"""

from __future__ import annotations

import json

from flask import Flask, Response, flash, g, has_request_context, render_template
from flask_babel import gettext as _
from flask_login import current_user

from sapien.extensions import htmx
from sapien.progression.streaks import STREAK_MILESTONES


def _is_current(user_id: int) -> bool:
    if not has_request_context():
        return False
    try:
        return bool(current_user and current_user.is_authenticated and current_user.id == user_id)
    except Exception:  # noqa: BLE001 - no login machinery in this context (e.g. a CLI request context)
        return False


def mark_status_changed(user_id: int) -> None:
    if _is_current(user_id):
        g.progression_status_changed = True


def mark_level_up(user_id: int, level: int) -> None:
    if _is_current(user_id):
        g.progression_status_changed = True
        g.progression_level_up = max(level, getattr(g, "progression_level_up", 0))


def mark_badge_earned(user_id: int, slug: str) -> None:
    if _is_current(user_id):
        g.setdefault("progression_badges", []).append(slug)


def on_badge_awarded(_sender=None, *, user_id: int, badge_slug: str, **_ignored) -> None:
    mark_badge_earned(user_id, badge_slug)


def on_quest_completed(_sender=None, *, user_id: int, quest_id: int, **_ignored) -> None:
    if _is_current(user_id):
        from sapien.progression.quest_catalogue import quest_text
        from sapien.progression.quests import get_quest

        quest = get_quest(quest_id)
        if quest is not None:
            g.setdefault("progression_quests_done", []).append(quest_text(quest))


def on_streak_extended(_sender=None, *, user_id: int, days: int, **_ignored) -> None:
    """The streak grew to `days`: celebrated only on a milestone."""
    if days in STREAK_MILESTONES and _is_current(user_id):
        g.progression_streak = days


def mark_notified(user_id: int) -> None:
    """A notification for the member was added: the response swaps in the bell with its new count."""
    if _is_current(user_id):
        g.member_notified = True


def mark_quests_changed(user_id: int) -> None:
    if _is_current(user_id):
        g.progression_quests_changed = True


def on_ledger_entry_posted(_sender=None, *, user_id: int, **_ignored) -> None:
    """Balances moved: the nav's status bar is refreshed in this request."""
    mark_status_changed(user_id)


def on_level_reached(_sender=None, *, user_id: int, level: int, **_ignored) -> None:
    mark_level_up(user_id, level)


def on_quests_moved(_sender=None, *, user_id: int, **_ignored) -> None:
    mark_quests_changed(user_id)


def on_notification_added(_sender=None, *, user_id: int, **_ignored) -> None:
    mark_notified(user_id)


def _add_trigger(response: Response, event_name: str) -> None:
    """Add a client event to `HX-Trigger`, keeping whatever another area already put there."""

    existing = response.headers.get("HX-Trigger", "").strip()
    if not existing:
        response.headers["HX-Trigger"] = event_name
    elif existing.startswith("{"):
        payload = json.loads(existing)
        payload.setdefault(event_name, None)
        response.headers["HX-Trigger"] = json.dumps(payload)
    elif event_name not in [name.strip() for name in existing.split(",")]:
        response.headers["HX-Trigger"] = f"{existing}, {event_name}"


def _append(response: Response, html: str) -> None:
    response.set_data(response.get_data() + html.encode())


def register_live_updates(app: Flask) -> None:
    @app.after_request
    def _live_updates(response: Response) -> Response:
        if htmx and getattr(g, "progression_quests_changed", False):
            # Quest lists on the page listen for this and refetch their (cheap) fragment at once.
            _add_trigger(response, "quests-changed")
        changed = getattr(g, "progression_status_changed", False)
        level = getattr(g, "progression_level_up", 0)
        # The bell is counted only when this request notified the member; otherwise its poll keeps it fresh.
        notified = getattr(g, "member_notified", False)
        badges = list(dict.fromkeys(getattr(g, "progression_badges", [])))
        quests = list(dict.fromkeys(getattr(g, "progression_quests_done", [])))
        streak = getattr(g, "progression_streak", 0)
        if not (changed or level or notified or badges or quests or streak):
            return response
        message = _("Level up! You reached level %(level)s.", level=level) if level else None
        html_response = response.mimetype == "text/html" and 200 <= response.status_code < 300
        if htmx and html_response and not response.headers.get("HX-Redirect") and not response.direct_passthrough:
            from sapien.progression.badges import get_badge

            oob = render_template(
                "progression/fragments/live_oob.html", level=level, level_message=message,
                status_changed=changed, notified=notified, streak=streak, quests_done=quests,
                badges_earned=[badge for badge in map(get_badge, badges) if badge is not None],
            )
            _append(response, oob)
        elif message:
            flash(message, "success")
        return response
