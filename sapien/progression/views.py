from __future__ import annotations

from datetime import UTC

from flask import Blueprint, abort, current_app, jsonify, make_response, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.accounts.service import get_by_username
from sapien.database import utcnow
from sapien.forms import EmptyForm
from sapien.progression import awards, mint_queue, quest_cards, streaks
from sapien.progression import errors as progression_errors
from sapien.progression import quests as progression_quests
from sapien.progression.badges import TIER_COLOURS, badge_svg, get_badge
from sapien.progression.forms import AwardBadgeForm, QuestForm, RevokeBadgeForm
from sapien.progression.quest_catalogue import ensure_rotation, quest_text
from sapien.quality.reputation import can_review
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

bp = Blueprint("progression", __name__)


@bp.app_context_processor
def _quest_helpers():
    return {"quest_text": quest_text}


# --- quests -------------------------------------------------------------------------------------


def _quests_context(compact: bool = False) -> dict:
    now = utcnow()
    ensure_rotation(now)  # a fresh install, or the first read of a new day, shows its quests at once
    return {
        "cards": quest_cards.quest_cards(current_user.id, now, can_review=can_review(current_user.id)),
        "streak": streaks.streak_state(current_user.id, now),
        "claim_form": EmptyForm(formdata=None),
        "freeze_price": current_app.config["STREAK_FREEZE_PRICE_POINTS"],
        "freeze_most": current_app.config["STREAK_FREEZE_MAX_HELD"],
        "compact": compact,
    }


@bp.get("/quests")
@login_required
def quests():
    return render_page_or_fragment("progression/quests.html", "progression/fragments/quests.html", **_quests_context())


@bp.get("/quests/progress")
@login_required
def quest_progress():
    """The cheap fragment the quests page and the dashboard poll for live progress."""
    return render_poll(
        "progression/quests.html",
        "progression/fragments/quest_list.html",
        **_quests_context(compact=request.args.get("compact") == "1"),
    )


@bp.post("/quests/<int:quest_id>/claim")
@login_required
def claim(quest_id: int):
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        quest_cards.claim_quest(current_user.id, quest_id, utcnow())
    except LookupError:
        abort(404)
    except progression_errors.QuestError as error:
        flash_message(str(error.message), "error")
        status = 409
    else:
        flash_message(_("Reward claimed."))
        status = 200
    if wants_fragment():
        return render_page_or_fragment(
            "progression/quests.html",
            "progression/fragments/quest_list.html",
            status=status,
            **_quests_context(compact=request.args.get("compact") == "1"),
        )
    return redirect_to(url_for("progression.quests"))


@bp.get("/quests/manage")
@role_required("moderator")
def manage_quests():
    return render_page_or_fragment(
        "progression/manage_quests.html",
        "progression/fragments/manage_quests.html",
        quests=progression_quests.all_quests(),
        objective_labels=progression_quests.OBJECTIVE_LABELS,
        scope_labels=progression_quests.SCOPE_LABELS,
    )


def _definition(form: QuestForm) -> progression_quests.QuestDefinition:
    def utc(value):
        return value.replace(tzinfo=UTC) if value is not None else None

    return progression_quests.QuestDefinition(
        title=form.title.data or "",
        description=form.description.data or "",
        period=form.period.data,
        objective=form.objective.data,
        scope=form.scope.data or "member",
        task_type=form.task_type.data or "",
        target=form.target.data,
        accuracy_percent=form.accuracy_percent.data,
        reward_points=form.reward_points.data or 0,
        reward_xp=form.reward_xp.data or 0,
        reward_freezes=form.reward_freezes.data or 0,
        reward_badge=form.reward_badge.data or None,
        starts_at=utc(form.starts_at.data),
        ends_at=utc(form.ends_at.data),
        is_active=bool(form.is_active.data),
    )


@bp.route("/quests/manage/new", methods=["GET", "POST"])
@role_required("moderator")
def new_quest():
    form = QuestForm()
    if request.method == "GET":
        form.starts_at.data = utcnow().replace(second=0, microsecond=0, tzinfo=None)
    if form.validate_on_submit():
        try:
            progression_quests.create_quest(_definition(form), actor_id=current_user.id, now=utcnow())
        except progression_errors.QuestError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Quest created."))
            return redirect_to(url_for("progression.manage_quests"))
    return render_page_or_fragment(
        "progression/quest_form.html", "progression/fragments/quest_form.html", status=form_status(form), form=form, quest=None
    )


@bp.route("/quests/manage/<int:quest_id>/edit", methods=["GET", "POST"])
@role_required("moderator")
def edit_quest(quest_id: int):
    quest = progression_quests.get_quest(quest_id)
    if quest is None:
        abort(404)
    form = QuestForm(obj=quest)
    if request.method == "GET":
        form.starts_at.data = quest.starts_at.replace(tzinfo=None) if quest.starts_at else None
        form.ends_at.data = quest.ends_at.replace(tzinfo=None) if quest.ends_at else None
        form.reward_badge.data = quest.reward_badge or ""
    if form.validate_on_submit():
        try:
            progression_quests.update_quest(quest_id, _definition(form), actor_id=current_user.id, now=utcnow())
        except progression_errors.QuestError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Quest saved."))
            return redirect_to(url_for("progression.manage_quests"))
    return render_page_or_fragment(
        "progression/quest_form.html", "progression/fragments/quest_form.html", status=form_status(form), form=form, quest=quest
    )


# --- streaks ------------------------------------------------------------------------------------


@bp.post("/streak/freeze")
@login_required
def buy_freeze():
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        streaks.buy_streak_freeze(current_user.id, utcnow())
    except progression_errors.ProgressionError as error:
        flash_message(str(error.message), "error")
    else:
        flash_message(_("Streak freeze bought: it will protect one missed day."))
    return redirect_to(request.referrer if (request.referrer or "").startswith(request.host_url) else url_for("progression.quests"))


# --- badges -------------------------------------------------------------------------------------


@bp.get("/badges")
def badges():
    viewer = current_user.id if current_user.is_authenticated else None
    return render_page_or_fragment(
        "progression/badges.html", "progression/fragments/badges.html", gallery=awards.badge_gallery(viewer)
    )


@bp.get("/badges/<slug>")
def badge(slug: str):
    viewer = current_user.id if current_user.is_authenticated else None
    is_moderator = current_user.is_authenticated and current_user.has_role("moderator")
    page = awards.badge_page(slug, viewer, include_hidden=is_moderator)
    if page is None:
        abort(404)
    return render_page_or_fragment(
        "progression/badge.html",
        "progression/fragments/badge.html",
        info=page,
        mint=mint_queue.mint_view(viewer, slug) if viewer is not None and page.viewer_award else None,
        award_form=AwardBadgeForm(formdata=None) if is_moderator else None,
        revoke_form=RevokeBadgeForm(formdata=None) if is_moderator else None,
    )


@bp.get("/badges/<slug>/mint")
@login_required
def mint_status(slug: str):
    """The viewer's mint of this badge: polled by the badge page while it moves."""
    found = get_badge(slug)
    if found is None:
        abort(404)
    return render_poll(
        "progression/mint.html", "progression/fragments/mint_status.html", badge=found, mint=mint_queue.mint_view(current_user.id, slug)
    )


@bp.get("/badges/token/<token_id>")
def token_metadata(token_id: str):
    """ERC-721 metadata of a minted badge token (SapienBadge's tokenURI points here)."""
    token = mint_queue.minted_token(token_id)
    found = get_badge(token.badge_slug) if token else None
    if found is None:
        return jsonify({"error": _("There is no minted badge with that token id.")}), 404
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    body = {
        "name": str(found.name),
        "description": str(found.description),
        "image": base + url_for("progression.token_image", token_id=token.token_id),
        "external_url": base + url_for("progression.badge", slug=found.slug),
        "attributes": [
            {"trait_type": "Badge", "value": found.slug},
            {"trait_type": "Tier", "value": found.tier},
            {"trait_type": "Awarded", "display_type": "date", "value": int(token.awarded_at.timestamp())},
        ],
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/badges/token/<token_id>/image.svg")
def token_image(token_id: str):
    token = mint_queue.minted_token(token_id)
    found = get_badge(token.badge_slug) if token else None
    if found is None:
        abort(404)
    response = make_response(badge_svg(found))
    response.headers["Content-Type"] = "image/svg+xml; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/badges/art/<slug>.svg")
@bp.get("/badges/art/<slug>/<tier>.svg")
def badge_art(slug: str, tier: str | None = None):
    found = get_badge(slug)
    if found is None or (tier is not None and tier not in TIER_COLOURS):
        abort(404)
    response = make_response(badge_svg(found, tier))
    response.headers["Content-Type"] = "image/svg+xml; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Vary"] = "Accept-Language, Cookie"  # the SVG's title is the badge's translated name
    return response


@bp.post("/badges/<slug>/award")
@role_required("moderator")
def award(slug: str):
    page = awards.badge_page(slug, current_user.id, include_hidden=True)
    if page is None:
        abort(404)
    form = AwardBadgeForm()
    if form.validate_on_submit():
        member = get_by_username(form.username.data.strip())
        if member is None:
            form.username.errors = [_("There is no member with that username.")]
        else:
            try:
                awards.award_badge(member.id, slug, utcnow(), awarded_by=current_user.id, reason=form.reason.data)
            except progression_errors.BadgeError as error:
                show_domain_error(form, error if error.field != "badge" else progression_errors.BadgeError(error.message, "username"))
            else:
                flash_message(_("Badge awarded to %(name)s.", name=member.display_name))
                return redirect_to(url_for("progression.badge", slug=slug))
    return render_page_or_fragment(
        "progression/badge.html",
        "progression/fragments/badge.html",
        status=422,
        info=page,
        mint=mint_queue.mint_view(current_user.id, slug) if page.viewer_award else None,
        award_form=form,
        revoke_form=RevokeBadgeForm(formdata=None),
    )


@bp.post("/badges/awards/<int:award_id>/revoke")
@role_required("moderator")
def revoke(award_id: int):
    form = RevokeBadgeForm()
    if not form.validate_on_submit():
        flash_message(_("Give a reason for revoking this badge."), "error")
        return redirect_to(request.referrer if (request.referrer or "").startswith(request.host_url) else url_for("progression.badges"))
    try:
        award = awards.revoke_badge(award_id, actor_id=current_user.id, reason=form.reason.data, now=utcnow())
    except LookupError:
        abort(404)
    except progression_errors.BadgeError as error:
        flash_message(str(error.message), "error")
        return redirect_to(url_for("progression.badges"))
    flash_message(_("Badge revoked."))
    return redirect_to(url_for("progression.badge", slug=award.badge_slug))

