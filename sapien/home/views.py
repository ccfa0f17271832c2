from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, make_response, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.accounts.service import count_members
from sapien.forms import EmptyForm
from sapien.home.art import guild_crest_svg, level_emblem_svg
from sapien.home.progress import level_unlocks, next_unlock, rank_gap, starting_point, streak_calendar
from sapien.home.service import member_summary
from sapien.labeling.settlement import pending_rewards
from sapien.member_cache import cached_page
from sapien.progression.badges import CATALOGUE
from sapien.progression.quest_catalogue import ensure_rotation
from sapien.progression.quests import quest_version_key
from sapien.progression.streaks import local_day
from sapien.progression.summary import dashboard_progress
from sapien.quality.reputation import can_review
from sapien.theme import THEME_COOKIE, THEMES, current_theme
from sapien.web import (
    flash_message,
    long_lived_cookie,
    redirect_to,
    render_page_or_fragment,
    render_poll,
    safe_next_url,
    wants_fragment,
)

bp = Blueprint("home", __name__)


@bp.app_context_processor
def _theme_context():
    return {"theme": current_theme(), "themes": THEMES, "badge_catalogue": CATALOGUE, "level_unlocks": level_unlocks}


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect_to(url_for("home.dashboard"))
    return render_page_or_fragment("home/index.html", "home/fragments/landing.html", member_count=count_members())


@bp.get("/dashboard")
@login_required
@cached_page("dashboard", quest_version_key)
def dashboard(now: datetime):
    ensure_rotation(now)  # a fresh install, or the first read of a new day, shows its quests at once
    summary = member_summary(current_user.id)
    return render_page_or_fragment(
        "home/dashboard.html",
        "home/fragments/dashboard.html",
        summary=summary,
        progression=dashboard_progress(current_user.id, now, can_review=can_review(current_user.id)),
        start=starting_point(current_user.id),
        claim_form=EmptyForm(formdata=None),
        next_unlock=next_unlock(current_user.id, summary.progress.xp),
        rank=rank_gap(current_user.id, now),
        calendar=streak_calendar(current_user.id, local_day(current_user.id, now)),
        pending=pending_rewards(current_user.id),
    )


@bp.get("/statusbar")
@login_required
def statusbar():
    """The nav's status bar, polled while rewards wait for verification (so it shows them paid); a plain
    visit goes to the dashboard, which shows the same figures."""
    if not wants_fragment():
        return redirect_to(url_for("home.dashboard"))
    return render_poll("home/dashboard.html", "fragments/statusbar.html")


@bp.post("/theme")
def set_theme():
    """Keep the chosen colour theme in a cookie (signed in or not) and go back to the page."""
    theme = request.form.get("theme", "")
    back = redirect_to(safe_next_url(url_for("home.index")))
    if theme not in THEMES:
        flash_message(_("Choose a theme from the list."), "error")
        return back
    long_lived_cookie(back, THEME_COOKIE, theme)
    return back


@bp.get("/design")
def design():
    """The component set, for developers: every component in every state, in the current theme."""
    return render_page_or_fragment("home/design.html", "home/fragments/design.html", badges=CATALOGUE[:3])


def _svg(body: str):
    response = make_response(body)
    response.headers["Content-Type"] = "image/svg+xml; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Vary"] = "Accept-Language, Cookie"  # the title inside is translated
    return response


@bp.get("/art/level/<int:level>.svg")
def level_emblem(level: int):
    if level > 999:
        abort(404)
    return _svg(level_emblem_svg(level, _("Level %(level)s", level=level)))


@bp.get("/art/crest/<slug>.svg")
def guild_crest(slug: str):
    """A guild's crest, drawn from its slug (no lookup: an unknown slug still gets a stable picture)."""
    if len(slug) > 64 or not all(ch.isalnum() or ch in "-_" for ch in slug):
        abort(404)
    return _svg(guild_crest_svg(slug, _("Guild crest")))
