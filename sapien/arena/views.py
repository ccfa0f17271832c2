"""The arena's pages: lobby and queue, the live match, results, boards, history, and the staff forms."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, make_response, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.accounts import service as accounts
from sapien.arena import challenges, fairplay, live, matches, matchmaking, prizes, ratings, results, stump
from sapien.arena.clash_scoring import clash_of_match
from sapien.arena.errors import ArenaError, MatchNotFound, NotAPlayer
from sapien.arena.forms import ChallengeForm, PoolForm, SeasonForm
from sapien.arena.models import CLASH_MODE, MATCH_MODES, MODES
from sapien.database import as_utc, utcnow
from sapien.extensions import db, htmx
from sapien.web import (
    flash_message,
    redirect_to,
    render_page_or_fragment,
    render_poll,
    role_required,
    show_domain_error,
)

bp = Blueprint("arena", __name__, url_prefix="/arena")
MODE = matches.MODE


def _lobby(status: int = 200, challenge_form: ChallengeForm | None = None):
    now = utcnow()
    season = ratings.season_to_show(now)
    mine = ratings.standing(current_user.id, MODE, season)
    return render_page_or_fragment(
        "arena/lobby.html", "arena/fragments/lobby.html", status=status,
        season=season, standing=mine, next_tier=ratings.next_tier(mine.rating), tier_names=ratings.TIER_NAMES,
        active_id=matches.active_match_id(current_user.id), history=results.history(current_user.id, limit=5),
        board=ratings.season_board(season.id, MODE, limit=5), incoming=challenges.incoming(current_user.id),
        challenge_form=challenge_form or ChallengeForm(formdata=None), pool=prizes.pool(),
    )


@bp.get("/")
@login_required
def lobby():
    return _lobby()


@bp.post("/queue")
@login_required
def join_queue():
    mode = request.form.get("mode", MODE)
    if mode not in MODES:
        flash_message(_("Choose a game to play."), "error")
        return redirect_to(url_for("arena.lobby"))
    try:
        state = matchmaking.join(current_user.id, utcnow(), mode)
    except ArenaError as error:
        flash_message(str(error), "error")
        return redirect_to(url_for("arena.lobby"))
    if state.status == "matched":
        return redirect_to(url_for("arena.match", match_id=state.match_id))
    return redirect_to(url_for("arena.queue"))


@bp.get("/queue")
@login_required
def queue():
    try:
        state = matchmaking.queue_state(current_user.id, utcnow())
    except ArenaError as error:
        flash_message(str(error), "error")
        return redirect_to(url_for("arena.lobby"))
    if state.status == "matched":
        return redirect_to(url_for("arena.match", match_id=state.match_id), 303)
    if state.status == "idle" and not htmx:
        return redirect_to(url_for("arena.lobby"), 303)
    return render_poll("arena/queue.html", "arena/fragments/queue.html", state=state, ghost_after=matchmaking.ghost_after())


@bp.post("/queue/leave")
@login_required
def leave_queue():
    matchmaking.leave_queue(current_user.id)
    flash_message(_("You left the queue."))
    return redirect_to(url_for("arena.lobby"))


def _match_or_404(match_id: int):
    try:
        return matches.get_match(match_id)
    except MatchNotFound:
        abort(404)


def _match_page(match_id: int, status: int = 200):
    match = _match_or_404(match_id)
    if match.mode == CLASH_MODE:  # a guild clash has its own page, with both teams
        return redirect_to(url_for("clash.page", clash_id=clash_of_match(match_id).id))
    now = utcnow()
    if match.status == "active" and now >= as_utc(match.deadline):
        matches.finish_if_due(match_id, now)
        db.session.refresh(match)
    seat = matches.seat_of(match_id, current_user.id)
    if seat is None or seat.is_ghost:
        abort(403)
    playing = match.status == "active" and seat.status == "active"
    view = results.match_view(match, current_user.id, with_answers=match.status == "finished")
    state = live.state(match_id, now)
    return render_page_or_fragment("arena/match.html", "arena/fragments/match.html", status=status, view=view, playing=playing, state=state,
                                   tier_of=ratings.tier_of, tier_names=ratings.TIER_NAMES)


@bp.get("/matches/<int:match_id>")
@login_required
def match(match_id: int):
    return _match_page(match_id)


@bp.get("/matches/<int:match_id>/live")
@login_required
def match_live(match_id: int):
    """The poll: timer and both players' progress from the match's Redis hash (no table read)."""
    now = utcnow()
    state = live.state(match_id, now)
    if state is None or current_user.id not in state.progress:
        abort(404)
    if state.status == "active" and state.seconds_left == 0:
        matches.finish_if_due(match_id, now)
        state = live.state(match_id, now)
    if state.status != "active" and htmx:
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url_for("arena.match", match_id=match_id)
        return response
    if not htmx:
        return redirect_to(url_for("arena.match", match_id=match_id), 303)
    # Rendered from the template alone, without the site's context processors: the strip needs none of the
    # nav's figures, and skipping them keeps the poll off the database.
    body = current_app.jinja_env.get_template("arena/fragments/live.html").render(state=state, match_id=match_id, me=current_user)
    response = make_response(body)
    response.headers["Vary"] = "HX-Request"
    return response


@bp.post("/matches/<int:match_id>/answer")
@login_required
def answer(match_id: int):
    item_id = request.form.get("item_id", type=int)
    verdict = request.form.get("verdict", "")
    if item_id is None or verdict not in ("ok", "flag"):
        flash_message(_("Choose whether the label looks right or is wrong."), "error")
        return _match_page(match_id, 422)
    try:
        matches.answer(match_id, current_user.id, item_id, flagged=verdict == "flag", label=request.form.get("label", ""), now=utcnow())
    except NotAPlayer:
        abort(403)
    except MatchNotFound:
        abort(404)
    except ArenaError as error:
        flash_message(str(error), "error")
        return _match_page(match_id, 422)
    if htmx:
        return _match_page(match_id)
    return redirect_to(url_for("arena.match", match_id=match_id))


@bp.post("/matches/<int:match_id>/leave")
@login_required
def leave(match_id: int):
    try:
        matches.leave(match_id, current_user.id, utcnow())
    except NotAPlayer:
        abort(403)
    flash_message(_("You left the match: it counts as a forfeit."), "error")
    return redirect_to(url_for("arena.match", match_id=match_id))


@bp.get("/leaderboard")
@login_required
def leaderboard():
    now = utcnow()
    current = ratings.season_to_show(now)
    all_seasons = ratings.seasons()
    season_id = request.args.get("season", current.id, type=int)
    season = next((one for one in all_seasons if one.id == season_id), current)
    mode = request.args.get("mode", MODE)
    mode = mode if mode in MATCH_MODES else MODE
    return render_page_or_fragment("arena/leaderboard.html", "arena/fragments/leaderboard.html", season=season, seasons=all_seasons,
                                   board=ratings.season_board(season.id, mode), tier_names=ratings.TIER_NAMES, mode=mode, modes=MODES)


@bp.get("/members/<username>")
@login_required
def member_history(username: str):
    user = accounts.get_by_username(username[:40])
    if user is None:
        abort(404)
    now = utcnow()
    mine = ratings.standing(user.id, MODE, ratings.season_to_show(now))
    return render_page_or_fragment("arena/history.html", "arena/fragments/history.html", member=user, standing=mine,
                                   history=results.history(user.id, limit=50), tier_names=ratings.TIER_NAMES)


@bp.post("/challenges")
@login_required
def challenge():
    form = ChallengeForm()
    if not form.validate():
        return _lobby(422, form)
    try:
        challenges.challenge(current_user.id, form.username.data, utcnow())
    except ArenaError as error:
        show_domain_error(form, error)
        return _lobby(422, form)
    flash_message(_("Challenge sent to %(name)s.", name=form.username.data.strip()))
    return redirect_to(url_for("arena.lobby"))


@bp.post("/challenges/<int:challenge_id>/<any(accept, decline):decision>")
@login_required
def respond(challenge_id: int, decision: str):
    try:
        started = challenges.respond(challenge_id, current_user.id, accept=decision == "accept", now=utcnow())
    except ArenaError as error:
        flash_message(str(error), "error")
        return redirect_to(url_for("arena.lobby"))
    if started is None:
        flash_message(_("Challenge declined."))
        return redirect_to(url_for("arena.lobby"))
    return redirect_to(url_for("arena.match", match_id=started.id))


# --- staff -----------------------------------------------------------------------------------------

def _admin_page(status: int = 200, pool_form: PoolForm | None = None, season_form: SeasonForm | None = None):
    pool = prizes.pool()
    if pool_form is None:
        pool_form = PoolForm(formdata=None)
        if pool is not None:
            pool_form.budget.data = pool.budget_tokens / prizes.TOKEN_UNIT
            pool_form.prize.data = pool.prize_tokens / prizes.TOKEN_UNIT
            pool_form.entry_fee.data = pool.entry_fee_points
    return render_page_or_fragment("arena/admin.html", "arena/fragments/admin.html", status=status, pool=pool, pool_form=pool_form,
                                   season_form=season_form or SeasonForm(formdata=None), season=ratings.season_to_show(utcnow()))


@bp.get("/admin")
@role_required("admin")
def admin():
    return _admin_page()


@bp.post("/admin/pool")
@role_required("admin")
def set_pool():
    form = PoolForm()
    if not form.validate():
        return _admin_page(422, pool_form=form)
    try:
        prizes.set_pool(form.settings(), actor_id=current_user.id, now=utcnow())
    except ArenaError as error:
        show_domain_error(form, error)
        return _admin_page(422, pool_form=form)
    flash_message(_("Prize pool saved."))
    return redirect_to(url_for("arena.admin"))


@bp.post("/admin/season")
@role_required("admin")
def new_season():
    form = SeasonForm()
    if not form.validate():
        return _admin_page(422, season_form=form)
    season = ratings.start_season(form.name.data or "", utcnow())
    flash_message(_("%(name)s has begun: ratings were softly reset.", name=season.name))
    return redirect_to(url_for("arena.admin"))


@bp.get("/flags")
@role_required("moderator")
def flags():
    return render_page_or_fragment("arena/flags.html", "arena/fragments/flags.html", matches=fairplay.open_flags(), reasons=fairplay.REASONS)


@bp.post("/flags/<int:match_id>/<decision>")
@role_required("moderator")
def decide_flag(match_id: int, decision: str):
    if decision not in ("clear", "uphold"):
        abort(404)
    try:
        done = matches.clear_flag(match_id, moderator_id=current_user.id, clear=decision == "clear", now=utcnow())
    except ArenaError:
        abort(404)
    if done:
        flash_message(_("Match cleared: it is rated and paid now.") if decision == "clear" else _("Flag upheld: the match will never count."))
    else:
        flash_message(_("That flag was already decided."), "error")
    return redirect_to(url_for("arena.flags"))


# --- stump the model -------------------------------------------------------------------------------

def _stump_page(status: int = 200, error: str = "", draft: dict | None = None):
    return render_page_or_fragment("arena/stump.html", "arena/fragments/stump.html", status=status, packs=stump.stump_packs(),
                                   to_confirm=stump.to_confirm(current_user.id), mine=stump.mine(current_user.id), error=error,
                                   draft=draft or {}, points=stump.STUMP_POINTS)


@bp.get("/stump")
@login_required
def stump_page():
    return _stump_page()


@bp.post("/stump")
@login_required
def stump_submit():
    draft = {"pack_id": request.form.get("pack_id", type=int), "text": request.form.get("text", "")[:2000], "label": request.form.get("label", "")}
    try:
        stump.submit(current_user.id, draft["pack_id"] or 0, draft["text"], draft["label"], utcnow())
    except ArenaError as error:
        return _stump_page(422, str(error), draft)
    flash_message(_("You stumped the model! Other members will now confirm the true label."))
    return redirect_to(url_for("arena.stump_page"))


@bp.post("/stump/<int:stump_id>/confirm")
@login_required
def stump_confirm(stump_id: int):
    try:
        row = stump.confirm(stump_id, current_user.id, request.form.get("label", ""), utcnow())
    except ArenaError as error:
        flash_message(str(error), "error")
        return _stump_page(422)
    flash_message(_("Confirmed: the item is now gold data of its pack.") if row.status == "confirmed" else _("Thanks: your label was counted."))
    return redirect_to(url_for("arena.stump_page"))
