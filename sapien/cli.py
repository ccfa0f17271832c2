"""Flask CLI commands: `flask demo seed`, `flask users ban|unban|role`, `flask jobs reconcile`, `flask jobs worker`, `flask chain status`,
`flask quests rotate`, `flask moderation scan|retention`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from sapien.accounts.models import ROLES
from sapien.accounts.service import get_by_username
from sapien.airdrops.cli import airdrops_cli
from sapien.api.cli import api_cli
from sapien.database import needs_schema, utcnow
from sapien.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
from sapien.labeling.cli import labeling_cli
from sapien.leaderboards.rebuild import enqueue_rebuild, rebuild_all
from sapien.moderation.cli import moderation_cli
from sapien.moderation.users import UserAdminError, ban, change_role, unban
from sapien.progression.quest_catalogue import rotate_quests
from sapien.progression.summary import enqueue_member_syncs
from sapien.quality.cli import quality_cli
from sapien.queue import reconcile

demo_cli = AppGroup("demo", help="Demo data.")
jobs_cli = AppGroup("jobs", help="Background jobs.")
chain_cli = AppGroup("chain", help="The EVM chain.")
progression_cli = AppGroup("progression", help="Levels, streaks, quests and badges.")


@progression_cli.command("sync")
@needs_schema
def progression_sync() -> None:
    """Enqueue a level and badge sync for every member (run after changing the badge catalogue)."""

    click.echo(f"{enqueue_member_syncs()} member sync job(s) enqueued.")


quests_cli = AppGroup("quests", help="Quests: the default catalogue's daily and weekly rotation.")


@quests_cli.command("rotate")
@needs_schema
def quests_rotate() -> None:
    """Create today's and this ISO week's catalogue quests if they are missing (safe to run again)."""

    created = rotate_quests(utcnow())
    click.echo(f"{len(created)} quest(s) created." if created else "Today's and this week's quests are already running.")


leaderboards_cli = AppGroup("leaderboards", help="Leaderboards (Redis sorted sets rebuilt from the ledger).")


@leaderboards_cli.command("rebuild")
@click.option("--queue", "use_queue", is_flag=True, help="Queue the rebuild job instead of running it here.")
@needs_schema
def leaderboards_rebuild(use_queue: bool) -> None:
    """Rebuild every current board, the accuracy board and frozen boards from the database."""

    if use_queue:
        job = enqueue_rebuild(utcnow())
        click.echo(f"queued {job.id}")
        return
    report = rebuild_all(utcnow())
    click.echo(f"rebuilt {report.boards} boards ({report.entries} entries), {report.frozen} frozen")
    for note in report.notes:
        click.echo(f"note: {note}")


users_cli = AppGroup("users", help="Member accounts: ban, unban, change a role (written to the audit log).")


def _user_id(username: str) -> int:
    user = get_by_username(username)
    if user is None:
        raise click.ClickException(f"no member is called {username!r}")
    return user.id


def _run_user_action(action, *args) -> None:
    try:
        action(*args)
    except UserAdminError as error:
        raise click.ClickException(str(error)) from error


@users_cli.command("ban")
@click.argument("username")
@click.option("--reason", required=True, help="Why: kept in the audit log.")
@needs_schema
def users_ban(username: str, reason: str) -> None:
    """Ban USERNAME: signed out everywhere at once, and refused at sign-in."""
    _run_user_action(ban, None, _user_id(username), reason, utcnow())
    click.echo(f"{username} is banned.")


@users_cli.command("unban")
@click.argument("username")
@click.option("--reason", required=True, help="Why: kept in the audit log.")
@needs_schema
def users_unban(username: str, reason: str) -> None:
    """Lift USERNAME's ban."""
    _run_user_action(unban, None, _user_id(username), reason, utcnow())
    click.echo(f"{username} is no longer banned.")


@users_cli.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--reason", default="", help="Why: kept in the audit log.")
@needs_schema
def users_role(username: str, role: str, reason: str) -> None:
    """Give USERNAME the role ROLE."""
    _run_user_action(change_role, None, _user_id(username), role, reason, utcnow())
    click.echo(f"{username} is now {role}.")


@demo_cli.command("seed")
@click.option("--members", default=300, show_default=True, help="How many community members to create.")
@needs_schema
def demo_seed(members: int) -> None:
    """Create a believable community (idempotent: does nothing if the demo data is there)."""

    created = seed_demo(members=members, now=utcnow())
    click.echo("Demo data created." if created else "Demo data already present.")
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for role, username in DEMO_LOGINS.items():
        click.echo(f"  {role:<13} {username}")


@jobs_cli.command("reconcile")
@needs_schema
def jobs_reconcile() -> None:
    """Re-enqueue every piece of pending work recorded in the database."""

    for source, count in reconcile().items():
        click.echo(f"{source}: {count}")


@chain_cli.command("status")
def chain_status_command() -> None:
    """Print the chain id and latest block of CHAIN_RPC_URL."""
    from sapien.chain.client import chain_status  # web3 loads slowly: only this command pays for it

    status = chain_status()
    if not status.ok:
        raise click.ClickException(f"chain unreachable: {status.error}")
    click.echo(f"chain_id={status.chain_id} block={status.block_number}")


@chain_cli.command("deploy")
def chain_deploy_command() -> None:
    """Deploy our contracts to CHAIN_RPC_URL (reusing recorded ones that are there) and record them."""
    from sapien.chain.client import chain_status
    from sapien.chain.deploy import DeployError, deploy_contracts

    status = chain_status()
    if not status.ok:
        raise click.ClickException(f"chain unreachable: {status.error}")
    try:
        deployed = deploy_contracts(utcnow())
    except DeployError as error:
        raise click.ClickException(str(error)) from error
    for contract in deployed:
        click.echo(f"{contract.name}: {contract.address} ({'already deployed' if contract.reused else 'deployed'}) on chain {status.chain_id}")


def register_cli(app: Flask) -> None:
    for group in (demo_cli, users_cli, jobs_cli, chain_cli, progression_cli, quests_cli, leaderboards_cli, labeling_cli, quality_cli, airdrops_cli, moderation_cli, api_cli):
        app.cli.add_command(group)
