"""The organization dashboard (HTML, for an organization's members signed in as site users): campaign
progress, quality and spend; API keys (created, rotated, revoked; a secret is shown once, on the answer
to the POST that made it, never stored); webhooks with their delivery log and redelivery."""

from __future__ import annotations

from flask import Blueprint, abort, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from sapien.api import campaigns, keys, orgs, webhooks
from sapien.api.errors import ApiError
from sapien.api.forms import KeyForm, MemberForm, WebhookForm
from sapien.database import utcnow
from sapien.forms import EmptyForm
from sapien.web import flash_message, form_status, redirect_to, render_page_or_fragment, show_domain_error

bp = Blueprint("org", __name__, url_prefix="/org")


def _organization(organization_id: int):
    """The organization, if the signed-in member belongs to it (404 otherwise: its existence is not shown)."""
    if orgs.membership(current_user.id, organization_id) is None:
        abort(404)
    return orgs.get_organization(organization_id)


@bp.get("/")
@login_required
def index():
    mine = orgs.organizations_of(current_user.id)
    if len(mine) == 1:
        return redirect_to(url_for("org.overview", organization_id=mine[0].id))
    return render_page_or_fragment("api/index.html", "api/index.html", organizations=mine)


@bp.get("/<int:organization_id>")
@login_required
def overview(organization_id: int):
    organization = _organization(organization_id)
    rows = campaigns.dashboard_rows(organization.id)
    return render_page_or_fragment("api/overview.html", "api/fragments/campaigns.html", organization=organization, rows=rows)


def _members_page(organization, form, *, status: int = 200):
    mine = orgs.membership(current_user.id, organization.id)
    return render_page_or_fragment(
        "api/members.html", "api/members.html", status=status, organization=organization, form=form,
        members=orgs.members_of(organization.id), is_owner=mine is not None and mine.role == "owner", action_form=EmptyForm(),
    )


@bp.route("/<int:organization_id>/members", methods=["GET", "POST"])
@login_required
def members(organization_id: int):
    """Everyone in the organization sees who is in it; owners add members (or change a role) by username."""
    organization = _organization(organization_id)
    form = MemberForm()
    if form.validate_on_submit():
        try:
            orgs.require_owner(current_user.id, organization.id)
            orgs.add_member(organization.id, form.username.data, role=form.role.data, now=utcnow())
        except ApiError as error:
            show_domain_error(form, error)
        else:
            flash_message(_l("%(name)s is in the organization now.", name=form.username.data.strip()), "success")
            return redirect_to(url_for("org.members", organization_id=organization.id))
    return _members_page(organization, form, status=form_status(form) if form.errors else 200)


@bp.post("/<int:organization_id>/members/<int:user_id>/remove")
@login_required
def remove_member(organization_id: int, user_id: int):
    organization = _organization(organization_id)
    try:
        orgs.require_owner(current_user.id, organization.id)
        orgs.remove_member(organization.id, user_id)
    except ApiError as error:
        flash_message(str(error), "error")
    else:
        flash_message(_l("The member left the organization."), "success")
    return redirect_to(url_for("org.members", organization_id=organization.id))


def _keys_page(organization, form, *, token: str | None = None, status: int = 200):
    return render_page_or_fragment(
        "api/keys.html", "api/keys.html", status=status, organization=organization, form=form, keys=keys.organization_keys(organization.id),
        token=token, action_form=EmptyForm(),
    )


@bp.route("/<int:organization_id>/keys", methods=["GET", "POST"])
@login_required
def api_keys(organization_id: int):
    organization = _organization(organization_id)
    form = KeyForm()
    if form.validate_on_submit():
        try:
            _key, token = keys.create_key(organization.id, name=form.name.data, scope=form.scope.data, actor_id=current_user.id, now=utcnow())
        except ApiError as error:
            show_domain_error(form, error)
        else:
            # The secret is shown on this answer only (a redirect would have to keep it somewhere).
            return _keys_page(organization, KeyForm(formdata=None), token=token, status=201)
    return _keys_page(organization, form, status=form_status(form) if form.errors else 200)


@bp.post("/<int:organization_id>/keys/<int:key_id>/rotate")
@login_required
def rotate_key(organization_id: int, key_id: int):
    organization = _organization(organization_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        _key, token = keys.rotate_key(organization.id, key_id, actor_id=current_user.id, now=utcnow())
    except ApiError as error:
        flash_message(str(error.message), "error")
        return redirect_to(url_for("org.api_keys", organization_id=organization.id))
    return _keys_page(organization, KeyForm(formdata=None), token=token, status=201)


@bp.post("/<int:organization_id>/keys/<int:key_id>/revoke")
@login_required
def revoke_key(organization_id: int, key_id: int):
    organization = _organization(organization_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        keys.revoke_key(organization.id, key_id, now=utcnow())
        flash_message(str(_l("The key was revoked: it no longer works.")))
    except ApiError as error:
        flash_message(str(error.message), "error")
    return redirect_to(url_for("org.api_keys", organization_id=organization.id))


def _webhooks_page(organization, form, *, secret: str | None = None, status: int = 200):
    return render_page_or_fragment(
        "api/webhooks.html", "api/webhooks.html", status=status, organization=organization, form=form,
        hooks=webhooks.organization_webhooks(organization.id), secret=secret,
    )


@bp.route("/<int:organization_id>/webhooks", methods=["GET", "POST"])
@login_required
def hooks(organization_id: int):
    organization = _organization(organization_id)
    form = WebhookForm()
    if form.validate_on_submit():
        try:
            _hook, secret = webhooks.register_webhook(organization.id, url=form.url.data, events=list(form.events.data), now=utcnow())
        except ApiError as error:
            show_domain_error(form, error)
        else:
            return _webhooks_page(organization, WebhookForm(formdata=None), secret=secret, status=201)
    return _webhooks_page(organization, form, status=form_status(form) if form.errors else 200)


@bp.get("/<int:organization_id>/webhooks/<int:webhook_id>")
@login_required
def deliveries(organization_id: int, webhook_id: int):
    organization = _organization(organization_id)
    try:
        hook = webhooks.own_webhook(organization.id, webhook_id)
    except ApiError:
        abort(404)
    return render_page_or_fragment(
        "api/deliveries.html", "api/fragments/deliveries.html", organization=organization, hook=hook,
        deliveries=webhooks.deliveries(organization.id, hook.id), action_form=EmptyForm(),
    )


@bp.post("/<int:organization_id>/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@login_required
def redeliver(organization_id: int, webhook_id: int, delivery_id: int):
    organization = _organization(organization_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        webhooks.redeliver(organization.id, webhook_id, delivery_id, now=utcnow())
        flash_message(str(_l("The delivery is on its way again.")))
    except ApiError as error:
        flash_message(str(error.message), "error")
    return redirect_to(url_for("org.deliveries", organization_id=organization.id, webhook_id=webhook_id))
