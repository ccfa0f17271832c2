from __future__ import annotations

from datetime import datetime

from flask import Blueprint, url_for
from flask_login import current_user, login_required

from sapien.accounts.service import count_members
from sapien.forms import EmptyForm
from sapien.home.service import member_summary
from sapien.member_cache import cached_page
from sapien.progression.quests import quest_version_key
from sapien.progression.summary import dashboard_progress
from sapien.web import redirect_to, render_page_or_fragment

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect_to(url_for("home.dashboard"))
    return render_page_or_fragment("home/index.html", "home/fragments/landing.html", member_count=count_members())


@bp.get("/dashboard")
@login_required
@cached_page("dashboard", quest_version_key)
def dashboard(now: datetime):
    return render_page_or_fragment(
        "home/dashboard.html",
        "home/fragments/dashboard.html",
        summary=member_summary(current_user.id),
        progression=dashboard_progress(current_user.id, now),
        claim_form=EmptyForm(formdata=None),
    )
