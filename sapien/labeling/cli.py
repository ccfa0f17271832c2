"""`flask labeling import|import-folder|demo|expire-leases`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from sapien.database import needs_schema, utcnow
from sapien.labeling import errors as labeling_errors
from sapien.labeling import imports, leases, packs, seeding

labeling_cli = AppGroup("labeling", help="Campaigns, task packs and their items.")


def _print_report(report) -> None:
    click.echo(f"imported {report.imported} item(s) ({report.gold} gold, {report.exam} exam), {report.media_stored} media file(s)")
    if report.problems:
        # Bad rows were skipped, the rest imported: say which and why ("3 row(s) skipped: line 7: …").
        click.echo(f"{report.rejected} row(s) skipped:", err=True)
        for problem in report.problems:
            click.echo(f"  line {problem.line}: {problem.message}", err=True)


@labeling_cli.command("import")
@click.argument("pack_slug")
@click.argument("items_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--media-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder the items' media paths are relative to.")
@click.option("--publish", is_flag=True, help="Publish the pack (a draft) once its items are in.")
@needs_schema
def import_command(pack_slug: str, items_file: Path, media_dir: Path | None, publish: bool) -> None:
    """Import items (.jsonl or .csv) into an existing pack; bad lines are reported and skipped."""

    pack = packs.get_pack_by_slug(pack_slug)
    if pack is None:
        raise click.ClickException(f"no pack with slug {pack_slug!r}")
    try:
        report = imports.import_items(pack.id, items_file, media_dir=media_dir or items_file.parent, now=utcnow())
    except labeling_errors.LabelingError as error:
        raise click.ClickException(str(error)) from None
    _print_report(report)
    if publish and pack.status == "draft":
        try:
            packs.publish_pack(pack.id, now=utcnow())
        except labeling_errors.LabelingError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"pack {pack.slug} published")


@labeling_cli.command("import-folder")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--draft", is_flag=True, help="Leave the new pack a draft instead of publishing it.")
@needs_schema
def import_folder_command(folder: Path, draft: bool) -> None:
    """Create a campaign and pack from FOLDER/pack.json, import its items and media, and publish it."""

    try:
        pack, report = imports.import_pack_folder(folder, actor_id=None, now=utcnow(), publish=not draft)
    except labeling_errors.LabelingError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"pack {pack.slug} created ({'published' if pack.status == 'open' else 'a draft: nothing to label was imported'})")
    _print_report(report)


@labeling_cli.command("demo")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), help="Keep the generated pack folders here.")
@needs_schema
def demo_command(out_dir: Path | None) -> None:
    """Generate the demo packs (real content, known answers) and import those not there yet."""

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    imported = seeding.seed_demo_packs(utcnow(), out_dir=out_dir)
    if not imported:
        click.echo("Demo packs already present.")
    for pack, report in imported:
        click.echo(f"pack {pack.slug}:")
        _print_report(report)


@labeling_cli.command("expire-leases")
@needs_schema
def expire_leases_command() -> None:
    """Return the slots of abandoned leases to the pool now."""

    click.echo(f"{leases.expire_leases(utcnow())} lease(s) expired")
