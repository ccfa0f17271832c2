"""`flask api create-org|add-member|create-key`: set up a client organization and its first key."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from sapien.api import keys, orgs
from sapien.api.errors import ApiError
from sapien.database import needs_schema, utcnow

api_cli = AppGroup("api", help="Client organizations and API keys.")


@api_cli.command("create-org")
@click.argument("name")
@click.argument("slug")
@click.option("--owner", help="Username of the member who runs it (a site account).")
@needs_schema
def create_org(name: str, slug: str, owner: str | None) -> None:
    """Create a client organization (and make OWNER its owner)."""
    try:
        organization = orgs.create_organization(name, slug, now=utcnow())
        if owner:
            orgs.add_member(organization.id, owner, role="owner", now=utcnow())
    except ApiError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(f"organization {organization.id} ({organization.slug})")


@api_cli.command("add-member")
@click.argument("slug")
@click.argument("username")
@click.option("--role", type=click.Choice(["owner", "member"]), default="member")
@needs_schema
def add_member(slug: str, username: str, role: str) -> None:
    """Give a site member access to an organization's dashboard."""
    organization = orgs.organization_by_slug(slug)
    if organization is None:
        raise click.ClickException(f"no organization {slug!r}")
    try:
        orgs.add_member(organization.id, username, role=role, now=utcnow())
    except ApiError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(f"{username} is a{'n owner' if role == 'owner' else ' member'} of {organization.name}")


@api_cli.command("create-key")
@click.argument("slug")
@click.option("--name", default="cli", show_default=True)
@click.option("--scope", type=click.Choice(["read", "write"]), default="write", show_default=True)
@needs_schema
def create_key(slug: str, name: str, scope: str) -> None:
    """Make an API key and print its token (shown only this once)."""
    organization = orgs.organization_by_slug(slug)
    if organization is None:
        raise click.ClickException(f"no organization {slug!r}")
    _key, token = keys.create_key(organization.id, name=name, scope=scope, actor_id=None, now=utcnow())
    click.echo(token)
