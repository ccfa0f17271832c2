"""The guild clash pages: challenges between guilds, the sides forming, the live match and the breakdown.

A second blueprint of the arena (registered by `create_app` beside the arena's own), under /arena/clashes.
"""

from __future__ import annotations

from flask import Blueprint, abort, make_response, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from sapien.arena import clash, clash_board, clash_results, clash_scoring, live, matches, results
from sapien.arena.errors import ArenaError, MatchNotFound, NotAPlayer
from sapien.arena.forms import ClashForm
from sapien.database import as_utc, utcnow
from sapien.extensions import db, htmx
from sapien.guilds.membership import guild_id_of
from sapien.guilds.models import Guild
from sapien.web import flash_message, redirect_to, render_page_or_fragment, render_poll, show_domain_error

clash_bp = Blueprint("clash", __name__, url_prefix="/arena/clashes")


def _lobby(status: int = 200, form: ClashForm | None = None):
    my_guild = guild_id_of(current_user.id)
    return render_page_or_fragment(
        "arena/clash_lobby.html",
        "arena/fragments/clash_lobby.html",
        status=status,
        form=form or ClashForm(formdata=None),
        my_guild=my_guild,
        clashes=clash.clashes_of_guild(my_guild),
        board=clash_board.guild_board(limit=20),
        active_id=clash.active_clash_id(current_user.id),
        clash_xp=clash_scoring.CLASH_XP_PER_POINT,
    )


@clash_bp.get("/")
@login_required
def lobby():
    return _lobby()


def _find_guild(text: str) -> int | None:
    """A guild by its name (any case) or its slug."""
    text = (text or "").strip()[:48]
    return db.session.scalar(
        select(Guild.id)
        .where(or_(func.lower(Guild.name) == text.lower(), Guild.slug == text.lower()), Guild.disbanded_at.is_(None))
        .limit(1)
    )


@clash_bp.post("/")
@login_required
def challenge():
    form = ClashForm()
    if not form.validate():
        return _lobby(422, form)
    guild_id = _find_guild(form.guild.data)
    if guild_id is None:
        form.guild.errors = [
            *form.guild.errors,
            _("There is no guild called %(name)s.", name=form.guild.data.strip()[:48]),
        ]
        return _lobby(422, form)
    try:
        row = clash.challenge(current_user.id, guild_id, utcnow())
    except ArenaError as error:
        show_domain_error(form, error)
        return _lobby(422, form)
    flash_message(_("Challenge sent: their leader or officers can accept it."))
    return redirect_to(url_for("clash.page", clash_id=row.id))


@clash_bp.post("/<int:clash_id>/<any(accept, decline):decision>")
@login_required
def respond(clash_id: int, decision: str):
    try:
        clash.respond(clash_id, current_user.id, accept=decision == "accept", now=utcnow())
    except clash.ClashNotFound:
        abort(404)
    except ArenaError as error:
        flash_message(str(error), "error")
        return _page(clash_id, 422)
    flash_message(
        _("Challenge accepted: three members of each guild can now take their places.")
        if decision == "accept"
        else _("Challenge declined.")
    )
    return redirect_to(url_for("clash.page", clash_id=clash_id))


def _page(clash_id: int, status: int = 200):
    try:
        view = clash.clash_view(clash_id, current_user.id)
    except clash.ClashNotFound:
        abort(404)
    row, now = view.clash, utcnow()
    context = {"view": view, "playing": False, "state": None, "breakdown": None, "rows": None, "pack": None}
    if row.match_id is not None:
        match = matches.get_match(row.match_id)
        if match.status == "active" and now >= as_utc(match.deadline):
            matches.finish_if_due(match.id, now)
            db.session.refresh(match)
            view = clash.clash_view(clash_id, current_user.id)
            context["view"] = view
        if match.status == "finished":
            context["breakdown"] = clash_results.breakdown(view.clash, match, current_user.id)
        else:
            seat = matches.seat_of(match.id, current_user.id)
            context["state"] = live.state(match.id, now)
            context["match"] = match
            if seat is not None:
                mine = results.match_view(match, current_user.id, with_answers=False)
                context.update(playing=seat.status == "active", rows=mine.rows, pack=mine.pack)
    return render_page_or_fragment("arena/clash.html", "arena/fragments/clash.html", status=status, **context)


@clash_bp.get("/<int:clash_id>")
@login_required
def page(clash_id: int):
    return _page(clash_id)


@clash_bp.post("/<int:clash_id>/join")
@login_required
def join(clash_id: int):
    try:
        joined = clash.join(clash_id, current_user.id, utcnow())
    except clash.ClashNotFound:
        abort(404)
    except ArenaError as error:
        flash_message(str(error), "error")
        return _page(clash_id, 422)
    if joined.match_id is not None:
        flash_message(_("Both sides are full: the clash has begun!"))
    elif joined.held_up:
        flash_message(joined.held_up, "error")
    else:
        flash_message(_("You took a place on your guild's side."))
    return redirect_to(url_for("clash.page", clash_id=clash_id))


@clash_bp.post("/<int:clash_id>/call-off")
@login_required
def call_off(clash_id: int):
    try:
        clash.call_off(clash_id, current_user.id, utcnow())
    except clash.ClashNotFound:
        abort(404)
    except ArenaError as error:
        flash_message(str(error), "error")
        return _page(clash_id, 422)
    flash_message(_("The clash is called off."))
    return redirect_to(url_for("clash.page", clash_id=clash_id))


@clash_bp.post("/<int:clash_id>/leave")
@login_required
def leave(clash_id: int):
    try:
        clash.leave_place(clash_id, current_user.id)
    except clash.ClashNotFound:
        abort(404)
    except ArenaError as error:
        flash_message(str(error), "error")
        return _page(clash_id, 422)
    flash_message(_("You gave up your place."))
    return redirect_to(url_for("clash.page", clash_id=clash_id))


@clash_bp.post("/<int:clash_id>/start")
@login_required
def start(clash_id: int):
    try:
        view = clash.clash_view(clash_id, current_user.id)
        if not view.viewer_has_place:
            raise ArenaError(_("Only the clash's players can start it."))
        clash.start(clash_id, utcnow())
    except clash.ClashNotFound:
        abort(404)
    except ArenaError as error:
        flash_message(str(error), "error")
        return _page(clash_id, 422)
    flash_message(_("Both sides are full: the clash has begun!"))
    return redirect_to(url_for("clash.page", clash_id=clash_id))


@clash_bp.post("/<int:clash_id>/answer")
@login_required
def answer(clash_id: int):
    try:
        row = clash.get_clash(clash_id)
    except clash.ClashNotFound:
        abort(404)
    item_id = request.form.get("item_id", type=int)
    verdict = request.form.get("verdict", "")
    if row.match_id is None or item_id is None or verdict not in ("ok", "flag"):
        flash_message(_("Choose whether the label looks right or is wrong."), "error")
        return _page(clash_id, 422)
    try:
        matches.answer(
            row.match_id,
            current_user.id,
            item_id,
            flagged=verdict == "flag",
            label=request.form.get("label", ""),
            now=utcnow(),
        )
    except NotAPlayer:
        abort(403)
    except MatchNotFound:
        abort(404)
    except ArenaError as error:
        flash_message(str(error), "error")
        return _page(clash_id, 422)
    if htmx:
        return _page(clash_id)
    return redirect_to(url_for("clash.page", clash_id=clash_id))


@clash_bp.get("/<int:clash_id>/live")
@login_required
def live_strip(clash_id: int):
    """The poll: the timer and how many items each player answered (never what), per side."""
    try:
        view = clash.clash_view(clash_id, current_user.id)
    except clash.ClashNotFound:
        abort(404)
    if view.clash.match_id is None:
        abort(404)
    now = utcnow()
    state = live.state(view.clash.match_id, now)
    if state is not None and state.status == "active" and state.seconds_left == 0:
        matches.finish_if_due(view.clash.match_id, now)
        state = live.state(view.clash.match_id, now)
    if state is None or state.status != "active" or not htmx:
        if htmx:
            response = make_response("", 200)
            response.headers["HX-Redirect"] = url_for("clash.page", clash_id=clash_id)
            return response
        return redirect_to(url_for("clash.page", clash_id=clash_id), 303)
    return render_poll("arena/clash.html", "arena/fragments/clash_live.html", view=view, state=state, clash_id=clash_id)
