from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.exceptions import BadRequest

from sapien.database import utcnow
from sapien.guilds.membership import guild_names
from sapien.leaderboards import boards, freezes, reading, recording
from sapien.leaderboards import rebuild as leaderboards_rebuild
from sapien.web import flash_message, redirect_to, render_page_or_fragment, role_required

bp = Blueprint("leaderboards", __name__, url_prefix="/leaderboards")


def _board(values) -> boards.Board:
    guild = values.get("guild", "")
    if guild and not guild.isdigit():
        raise _bad(_("Unknown guild."))
    try:
        board = boards.parse_board(values.get("board"), values.get("period"), values.get("task"), int(guild) if guild else None)
    except boards.LeaderboardError as error:
        raise _bad(str(error.message)) from None
    if board.guild_id is not None and board.guild_id not in guild_names([board.guild_id]):
        abort(404)
    return board


def _bad(message: str) -> BadRequest:
    error = BadRequest(message)
    error.user_message = message
    return error


def board_args(board: boards.Board, **extra) -> dict:
    """Query-string values that name `board` (for links, paging and polling)."""
    args = {"board": board.metric, "period": board.period}
    if board.task_type:
        args["task"] = board.task_type
    if board.guild_id is not None:
        args["guild"] = board.guild_id
    args.update(extra)
    return args


@bp.get("/")
def index():
    board = _board(request.args)
    page = request.args.get("page", 1, type=int) or 1
    viewer = current_user.id if current_user.is_authenticated else None
    view = reading.board_page(board, viewer, utcnow(), page)
    return render_page_or_fragment(
        "leaderboards/index.html",
        "leaderboards/fragments/board.html",
        view=view,
        board_args=board_args,
        periods=boards.PERIOD_LABELS,
        metrics=boards.METRIC_LABELS,
        min_gold=recording.min_gold(),
    )


@bp.get("/me")
@login_required
def me():
    ranks = reading.member_ranks(current_user.id, utcnow())
    return render_page_or_fragment(
        "leaderboards/me.html",
        "leaderboards/fragments/my_ranks.html",
        ranks=ranks,
        min_gold=recording.min_gold(),
        board_args=board_args,
        periods=boards.PERIOD_LABELS,
        metrics=boards.METRIC_LABELS,
    )


@bp.post("/freeze")
@role_required("moderator")
def freeze():
    board = _board(request.form)
    try:
        freezes.freeze_board(board, current_user.id, utcnow())
    except boards.LeaderboardError as error:
        flash_message(str(error.message), "error")
    else:
        flash_message(_("The board is frozen: the public sees it as it stands now."))
    return redirect_to(url_for("leaderboards.index", **board_args(board)))


@bp.post("/unfreeze")
@role_required("moderator")
def unfreeze():
    board = _board(request.form)
    try:
        freezes.unfreeze_board(board, current_user.id, utcnow())
    except boards.LeaderboardError as error:
        flash_message(str(error.message), "error")
    else:
        flash_message(_("The board is live again."))
    return redirect_to(url_for("leaderboards.index", **board_args(board)))


@bp.post("/rebuild")
@role_required("moderator")
def rebuild():
    leaderboards_rebuild.enqueue_rebuild(utcnow())
    flash_message(_("A rebuild of every board is queued."))
    return redirect_to(url_for("leaderboards.index"))


@bp.get("/league")
@login_required
def league():
    from sapien.leaderboards.leagues import LEAGUES, league_page

    return render_page_or_fragment(
        "leaderboards/league.html", "leaderboards/fragments/league.html", view=league_page(current_user.id, utcnow()), leagues=LEAGUES
    )
