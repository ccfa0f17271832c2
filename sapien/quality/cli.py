"""`flask quality ...`: crowd replay, batch aggregation, reputation decay."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from sapien.database import needs_schema, utcnow
from sapien.labeling.packs import get_pack_by_slug
from sapien.quality.batch import aggregate_pack, enqueue_aggregation
from sapien.quality.errors import QualityError
from sapien.quality.replay import DEFAULT_LABELS_PER_ITEM, ReplayError, replay
from sapien.quality.reputation import decay_reputation

quality_cli = AppGroup("quality", help="Gold, reviews, aggregation, reputation, crowd replay.")


@quality_cli.command("replay")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--gold-percent", default=5.0, show_default=True, help="Share of the items (with their truth) used as gold items.")
@click.option("--confidence", default=0.95, show_default=True, help="Calibrated online confidence an item needs to retire early.")
@click.option("--labels-per-item", type=click.IntRange(min=1), default=DEFAULT_LABELS_PER_ITEM, show_default=True, help="Answers every item gets before the online posterior may retire it.")
@click.option("--seed", default=20240601, show_default=True, help="Seed of the gold choice and the answer order.")
@needs_schema
def replay_command(folder: Path, gold_percent: float, confidence: float, labels_per_item: int, seed: int) -> None:
    """Replay a crowd dataset (answers + truth) through assignment, submission and aggregation."""

    try:
        report = replay(
            folder, now=utcnow(), gold_percent=gold_percent, confidence=confidence, labels_per_item=labels_per_item, seed=seed, echo=click.echo
        )
    except ReplayError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"pack {report.pack_slug}: {report.workers} members, {report.answers_fed} answers fed, {report.answers_skipped} skipped (item already retired)")
    if report.rows_skipped:
        click.echo(f"{len(report.rows_skipped)} row(s) skipped: " + "; ".join(report.rows_skipped))
    if report.import_problems:
        click.echo(f"{len(report.import_problems)} item(s) not imported, {report.answers_not_imported} of their answers skipped")
    click.echo(f"{report.correct}/{report.scored} non-gold items right in {report.seconds:.1f} s")
    for line in report.reliability_lines():
        click.echo(line)
    click.echo(report.summary_line())


@quality_cli.command("aggregate")
@click.argument("slug")
@click.option("--method", default=None, help="calibrated, dawid_skene, wawa or majority_vote (classification); medoid (texts); box_medoid.")
@click.option("--finalize", is_flag=True, help="Also label open items that have answers.")
@click.option("--queue", "use_queue", is_flag=True, help="Queue the aggregation job instead of running it here.")
@needs_schema
def aggregate_command(slug: str, method: str | None, finalize: bool, use_queue: bool) -> None:
    """Aggregate a pack's answers into verified labels."""

    pack = get_pack_by_slug(slug)
    if pack is None:
        raise click.ClickException(f"no pack with slug {slug!r}")
    if use_queue:
        click.echo(f"queued {enqueue_aggregation(pack.id, now=utcnow()).id}")
        return
    try:
        report = aggregate_pack(pack.id, now=utcnow(), method=method, finalize=finalize)
    except QualityError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{report.method}: {report.answers} answers, {report.labels_written} labels written in {report.seconds:.2f} s")


@quality_cli.command("decay")
@needs_schema
def decay_command() -> None:
    """Drift inactive members' reputation toward the mean (once per ISO week)."""

    click.echo(f"{decay_reputation(utcnow())} member(s) decayed")
