from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.accounts.service import count_members
from sapien.forms import EmptyForm
from sapien.home.service import member_summary
from sapien.member_cache import cached_page
from sapien.progression.quests import quest_version_key
from sapien.progression.summary import dashboard_progress
from sapien.theme import THEME_COOKIE, THEMES, current_theme
from sapien.web import flash_message, redirect_to, render_page_or_fragment

bp = Blueprint("home", __name__)


@bp.app_context_processor
def _theme_context():
    from sapien.home.progress import level_unlocks
    from sapien.progression.badges import CATALOGUE

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
    from sapien.home.progress import next_unlock, rank_gap, streak_calendar
    from sapien.progression.streaks import local_day

    summary = member_summary(current_user.id)
    return render_page_or_fragment(
        "home/dashboard.html",
        "home/fragments/dashboard.html",
        summary=summary,
        progression=dashboard_progress(current_user.id, now),
        claim_form=EmptyForm(formdata=None),
        next_unlock=next_unlock(current_user.id, summary.progress.xp),
        rank=rank_gap(current_user.id, now),
        calendar=streak_calendar(current_user.id, local_day(current_user.id, now)),
    )


@bp.post("/theme")
def set_theme():
    """Keep the chosen colour theme in a cookie (signed in or not) and go back to the page."""
    target = request.args.get("next", "")
    parts = urlsplit(target)
    local = target.startswith("/") and not target.startswith("//") and not parts.netloc and not parts.scheme
    theme = request.form.get("theme", "")
    back = redirect_to(target if local else url_for("home.index"))
    if theme not in THEMES:
        flash_message(_("Choose a theme from the list."), "error")
        return back
    back.set_cookie(THEME_COOKIE, theme, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return back


@bp.get("/design")
def design():
    """The component set, for developers: every component in every state, in the current theme."""
    from sapien.progression.badges import CATALOGUE

    return render_page_or_fragment("home/design.html", "home/fragments/design.html", badges=CATALOGUE[:3])


def _svg(body: str):
    from flask import make_response

    response = make_response(body)
    response.headers["Content-Type"] = "image/svg+xml; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Vary"] = "Accept-Language, Cookie"  # the title inside is translated
    return response


@bp.get("/art/level/<int:level>.svg")
def level_emblem(level: int):
    from flask import abort

    from sapien.home.art import level_emblem_svg

    if level > 999:
        abort(404)
    return _svg(level_emblem_svg(level, _("Level %(level)s", level=level)))


@bp.get("/art/crest/<slug>.svg")
def guild_crest(slug: str):
    """A guild's crest, drawn from its slug (no lookup: an unknown slug still gets a stable picture)."""
    from flask import abort

    from sapien.home.art import guild_crest_svg

    if len(slug) > 64 or not all(ch.isalnum() or ch in "-_" for ch in slug):
        abort(404)
    return _svg(guild_crest_svg(slug, _("Guild crest")))
