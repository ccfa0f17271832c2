from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, abort, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.arena import clash as arena_clash
from sapien.arena import clash_board
from sapien.database import utcnow
from sapien.guilds import founding, overview
from sapien.guilds import membership as guilds_membership
from sapien.guilds.forms import ApplyForm, GuildForm, InviteForm, KickForm, RoleForm
from sapien.guilds.models import JOIN_POLICIES
from sapien.leaderboards import guild_rankings
from sapien.leaderboards.reading import guild_totals
from sapien.progression import quest_cards
from sapien.web import flash_message, form_status, redirect_to, render_page_or_fragment, show_domain_error

bp = Blueprint("guilds", __name__, url_prefix="/guilds")


def _guild_or_404(slug: str):
    try:
        return guilds_membership.get_guild_by_slug(slug)
    except guilds_membership.GuildNotFound:
        abort(404)


def _guild_page(slug: str, status: int = 200, **forms):
    try:
        view = overview.guild_view(slug, current_user.id if current_user.is_authenticated else None)
    except guilds_membership.GuildNotFound:
        abort(404)
    forms.setdefault("apply_form", ApplyForm(formdata=None))
    forms.setdefault("invite_form", InviteForm(formdata=None))
    forms.setdefault("kick_form", KickForm(formdata=None))
    forms.setdefault("role_form", RoleForm(formdata=None))
    quests = quest_cards.guild_quest_lines(view.guild.id, utcnow())
    total_xp = guild_totals([view.guild.id]).get(view.guild.id, 0)
    # Guild clashes (the arena): the guild's record, its recent clashes, and whether the viewer may challenge it.
    viewer = view.my_membership if current_user.is_authenticated else None
    may_challenge = bool(viewer and viewer.guild_id != view.guild.id and viewer.role in guilds_membership.MANAGERS)
    return render_page_or_fragment(
        "guilds/guild.html", "guilds/fragments/guild.html", status=status, view=view, total_xp=total_xp, guild_quests=quests,
        clash_record=clash_board.guild_record(view.guild.id), guild_clashes=arena_clash.clashes_of_guild(view.guild.id, limit=5),
        may_challenge=may_challenge, **forms
    )


def _act(slug: str, action, success: str, form=None, form_name: str | None = None, target: str | None = None):
    """Run one service call: 403/404 for permission and tampering, the page again with a message for rule breaks."""
    try:
        action()
    except guilds_membership.GuildForbidden:
        abort(403)
    except guilds_membership.GuildNotFound:
        abort(404)
    except guilds_membership.GuildError as error:
        extra = {}
        if form is not None and form_name:
            show_domain_error(form, error)
            extra[form_name] = form
            if not error.field:
                flash_message(str(error.message), "error")
        else:
            flash_message(str(error.message), "error")
        if target is None:
            return _guild_page(slug, 422, **extra)
        return redirect_to(target)
    flash_message(success)
    return redirect_to(target or url_for("guilds.show", slug=slug))


# --- directory, my guild, create ----------------------------------------------------------------

@bp.get("/")
@login_required
def directory():
    query = request.args.get("q", "")[:48]
    policy = request.args.get("policy", "")
    if policy not in ("", *JOIN_POLICIES):
        policy = ""
    page = request.args.get("page", 1, type=int)
    cards, pages = guild_rankings.directory(query, policy, page)
    return render_page_or_fragment(
        "guilds/directory.html",
        "guilds/fragments/directory_list.html",
        cards=cards,
        pages=pages,
        page_number=min(max(1, page), pages),
        query=query,
        policy=policy,
    )


@bp.get("/mine")
@login_required
def mine():
    state = overview.my_guild(current_user.id)
    if state.guild is not None:
        return redirect_to(url_for("guilds.show", slug=state.guild.slug))
    return render_page_or_fragment("guilds/mine.html", "guilds/fragments/mine.html", state=state)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def create():
    form = GuildForm()
    if form.validate_on_submit():
        draft = form.draft()
        try:
            guild = founding.create_guild(current_user.id, draft, utcnow())
        except guilds_membership.GuildError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("%(guild)s is founded. You are its leader.", guild=guild.name))
            return redirect_to(url_for("guilds.show", slug=guild.slug))
    return render_page_or_fragment("guilds/new.html", "guilds/fragments/guild_form.html", status=form_status(form), form=form, guild=None)


# --- one guild -----------------------------------------------------------------------------------

@bp.get("/<slug>")
@login_required
def show(slug: str):
    return _guild_page(slug)


@bp.route("/<slug>/settings", methods=["GET", "POST"])
@login_required
def settings(slug: str):
    guild = _guild_or_404(slug)
    membership = guilds_membership.membership_of(current_user.id)
    if membership is None or membership.guild_id != guild.id or membership.role != "leader":
        abort(403)
    form = GuildForm(obj=guild)
    if form.validate_on_submit():
        draft = form.draft()
        try:
            founding.update_guild(current_user.id, guild.id, draft)
        except guilds_membership.GuildForbidden:
            abort(403)
        except guilds_membership.GuildError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("The guild's settings are saved."))
            return redirect_to(url_for("guilds.show", slug=guild.slug))
    return render_page_or_fragment("guilds/new.html", "guilds/fragments/guild_form.html", status=form_status(form), form=form, guild=guild)


@bp.post("/<slug>/join")
@login_required
def join(slug: str):
    guild = _guild_or_404(slug)
    return _act(slug, lambda: guilds_membership.join(current_user.id, guild.id, utcnow()), _("Welcome to %(guild)s!", guild=guild.name))


@bp.post("/<slug>/apply")
@login_required
def apply(slug: str):
    guild = _guild_or_404(slug)
    form = ApplyForm()
    if not form.validate():
        return _guild_page(slug, 422, apply_form=form)
    return _act(
        slug,
        lambda: guilds_membership.apply(current_user.id, guild.id, form.message.data or "", utcnow()),
        _("Your application to %(guild)s is sent.", guild=guild.name),
        form,
        "apply_form",
    )


# --- confirmations: leaving, handing over and kicking take a second, deliberate step ---------------
# Each action has a GET page asking "Yes, …?" (reachable without script, and where an unconfirmed POST is
# sent); the guild page opens the same question in place. Only a POST carrying confirm=yes acts.

def _confirmed() -> bool:
    return request.form.get("confirm") == "yes"


def _confirmation(question: str, status: int = 200, **context):
    return render_page_or_fragment("guilds/confirm.html", "guilds/fragments/confirm.html", status=status, question=question, **context)


def _member_question(slug: str, user_id: int, allowed) -> tuple[overview.GuildView, overview.MemberLine]:
    """The guild page's view and the member a question is about: 404 for a stranger, 403 when the viewer may not act."""
    try:
        view = overview.guild_view(slug, current_user.id)
    except guilds_membership.GuildNotFound:
        abort(404)
    member = view.member(user_id)
    if member is None:
        abort(404 if view.can_manage else 403)
    if not allowed(view, member):
        abort(403)
    return view, member


@bp.get("/leave")
@login_required
def confirm_leave():
    state = overview.my_guild(current_user.id)
    if state.guild is None:
        flash_message(_("You are not in a guild."), "error")
        return redirect_to(url_for("guilds.mine"))
    view = overview.guild_view(state.guild.slug, current_user.id)
    return _confirmation("leave", view=view, guild=view.guild)


@bp.post("/leave")
@login_required
def leave():
    if not _confirmed():
        return redirect_to(url_for("guilds.confirm_leave"))
    try:
        guilds_membership.leave(current_user.id, utcnow())
    except guilds_membership.GuildError as error:
        flash_message(str(error.message), "error")
        state = overview.my_guild(current_user.id)
        if state.guild is None:
            return redirect_to(url_for("guilds.mine"))
        return _guild_page(state.guild.slug, 422)
    flash_message(_("You left your guild."))
    return redirect_to(url_for("guilds.directory"))


@bp.post("/applications/<int:application_id>/withdraw")
@login_required
def withdraw(application_id: int):
    try:
        guilds_membership.withdraw_application(current_user.id, application_id, utcnow())
    except guilds_membership.GuildNotFound:
        abort(404)
    except guilds_membership.GuildError as error:
        flash_message(str(error.message), "error")
        return redirect_to(url_for("guilds.mine"))
    flash_message(_("Your application is withdrawn."))
    return redirect_to(url_for("guilds.mine"))


@bp.post("/<slug>/applications/<int:application_id>/<any(accept, decline):decision>")
@login_required
def decide(slug: str, application_id: int, decision: str):
    guild = _guild_or_404(slug)
    accept = decision == "accept"
    return _act(
        slug,
        lambda: guilds_membership.decide_application(current_user.id, guild.id, application_id, accept, utcnow()),
        _("Application accepted.") if accept else _("Application declined."),
    )


@bp.post("/<slug>/invite")
@login_required
def invite(slug: str):
    guild = _guild_or_404(slug)
    form = InviteForm()
    if not form.validate():
        return _guild_page(slug, 422, invite_form=form)
    return _act(
        slug,
        lambda: guilds_membership.invite(current_user.id, guild.id, form.username.data, utcnow()),
        _("Invitation sent to %(name)s.", name=form.username.data),
        form,
        "invite_form",
    )


@bp.post("/invitations/<int:invitation_id>/<any(accept, decline):decision>")
@login_required
def respond(invitation_id: int, decision: str):
    accept = decision == "accept"
    try:
        invitation = guilds_membership.respond_invitation(current_user.id, invitation_id, accept, utcnow())
    except guilds_membership.GuildNotFound:
        abort(404)
    except guilds_membership.GuildError as error:
        flash_message(str(error.message), "error")
        return redirect_to(url_for("guilds.mine"))
    if accept:
        flash_message(_("Welcome to your new guild!"))
        return redirect_to(url_for("guilds.show", slug=guilds_membership.guild_names([invitation.guild_id])[invitation.guild_id][1]))
    flash_message(_("Invitation declined."))
    return redirect_to(url_for("guilds.mine"))


@bp.post("/<slug>/members/<int:user_id>/role")
@login_required
def change_role(slug: str, user_id: int):
    guild = _guild_or_404(slug)
    form = RoleForm()
    if not form.validate():
        flash_message(_("Choose a role from the list."), "error")
        return _guild_page(slug, 422)
    return _act(slug, lambda: guilds_membership.set_role(current_user.id, guild.id, user_id, form.role.data, utcnow()), _("Role changed."))


@bp.get("/<slug>/members/<int:user_id>/transfer")
@login_required
def confirm_transfer(slug: str, user_id: int):
    view, member = _member_question(slug, user_id, overview.GuildView.can_hand_over_to)
    return _confirmation("transfer", view=view, guild=view.guild, member=member)


@bp.post("/<slug>/members/<int:user_id>/transfer")
@login_required
def transfer(slug: str, user_id: int):
    guild = _guild_or_404(slug)
    if not _confirmed():
        return redirect_to(url_for("guilds.confirm_transfer", slug=slug, user_id=user_id))
    return _act(slug, lambda: guilds_membership.transfer_leadership(current_user.id, guild.id, user_id, utcnow()), _("You handed over the leadership."))


@bp.get("/<slug>/members/<int:user_id>/kick")
@login_required
def confirm_kick(slug: str, user_id: int):
    view, member = _member_question(slug, user_id, overview.GuildView.can_kick)
    return _confirmation("kick", view=view, guild=view.guild, member=member, kick_form=KickForm(formdata=None))


@bp.post("/<slug>/members/<int:user_id>/kick")
@login_required
def kick(slug: str, user_id: int):
    guild = _guild_or_404(slug)
    if not _confirmed():
        return redirect_to(url_for("guilds.confirm_kick", slug=slug, user_id=user_id))
    form = KickForm()
    if not form.validate():
        # The question again, with the reason's error beside it (a member the viewer may not kick gets a 403).
        view, member = _member_question(slug, user_id, overview.GuildView.can_kick)
        return _confirmation("kick", 422, view=view, guild=view.guild, member=member, kick_form=form)
    return _act(slug, lambda: guilds_membership.kick(current_user.id, guild.id, user_id, form.reason.data, utcnow()), _("The member was removed from the guild."))


# --- the leader dashboard ------------------------------------------------------------------------

def _dashboard_filters() -> guild_rankings.DashboardFilter:
    sort = request.args.get("sort", "xp")
    role = request.args.get("role", "")
    return guild_rankings.DashboardFilter(
        sort=sort if sort in guild_rankings.DASHBOARD_SORTS else "xp",
        descending=request.args.get("dir", "desc") != "asc",
        role=role if role in guild_rankings.DASHBOARD_ROLES else "",
        query=request.args.get("q", "")[:64],
        active_only=request.args.get("active") == "1",
    )


def _dashboard_rows(slug: str, now: datetime):
    guild = _guild_or_404(slug)
    filters = _dashboard_filters()
    try:
        rows = guild_rankings.dashboard(current_user.id, guild.id, filters, now)
    except guilds_membership.GuildForbidden:
        abort(403)
    except guilds_membership.GuildNotFound:
        abort(404)
    return guild, filters, rows


@bp.get("/<slug>/dashboard")
@login_required
def dashboard(slug: str):
    guild, filters, rows = _dashboard_rows(slug, utcnow())
    return render_page_or_fragment(
        "guilds/dashboard.html", "guilds/fragments/dashboard_table.html", guild=guild, filters=filters, rows=rows
    )


@bp.get("/<slug>/dashboard.csv")
@login_required
def dashboard_csv(slug: str):
    now = utcnow()
    guild, _filters, rows = _dashboard_rows(slug, now)
    response = Response(stream_with_context(guild_rankings.dashboard_csv(rows)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{guild.slug}-members-{now:%Y-%m-%d}.csv"'
    return response
