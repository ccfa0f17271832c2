"""`flask moderation ...`: run the detectors and the fraud model, enforce the signals' retention."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from sapien.database import needs_schema, utcnow
from sapien.moderation.safety.decisions import lift_expired_bans
from sapien.moderation.safety.scan import run_scan
from sapien.moderation.signals import enforce_retention, retention_days

moderation_cli = AppGroup("moderation", help="Trust & safety: scans, flags, retention.")


@moderation_cli.command("scan")
@needs_schema
def scan_command() -> None:
    """Run every detector and the fraud model over the community and open flags."""

    report = run_scan(utcnow())
    click.echo(f"{report.members} member(s) scored; findings: " + ", ".join(f"{kind} {count}" for kind, count in report.findings.items()))
    click.echo(f"model flags {report.model_flags}; {report.flags_opened} flag(s) opened, {report.flags_refreshed} refreshed.")


@moderation_cli.command("retention")
@needs_schema
def retention_command() -> None:
    """Delete signals older than the retention period and lift bans whose time is up."""

    now = utcnow()
    deleted = enforce_retention(now)
    lifted = lift_expired_bans(now)
    click.echo(f"{deleted} signal(s) older than {retention_days()} days deleted; {lifted} ended ban(s) lifted.")
