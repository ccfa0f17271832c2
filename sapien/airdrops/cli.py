"""`flask airdrops run CONFIG.json` and `flask airdrops export ID --out DIR` (docs/airdrops.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
from flask.cli import AppGroup

from sapien.airdrops.config import ConfigError, parse_config
from sapien.airdrops.models import AirdropSnapshot, SnapshotEntry
from sapien.airdrops.snapshots import create_snapshot, run_snapshot
from sapien.database import needs_schema, utcnow
from sapien.extensions import db

airdrops_cli = AppGroup("airdrops", help="Airdrop snapshots: run one from a config file, export its tree.")


@airdrops_cli.command("run")
@click.argument("config_path", type=click.Path(exists=True, dir_okay=False))
@needs_schema
def run(config_path: str) -> None:
    """Run a snapshot here (not on the queue); the snapshot id is the last line printed."""
    try:
        data = json.loads(Path(config_path).read_text())
    except (OSError, ValueError) as error:
        raise click.ClickException(f"{config_path} is not readable JSON: {error}") from error
    now = utcnow()
    try:
        config = parse_config(data, now)
    except ConfigError as error:
        raise click.ClickException("the config has problems:\n  " + "\n  ".join(error.problems)) from error
    snapshot = create_snapshot(config, None, now)
    snapshot_id = snapshot.id
    status = run_snapshot(snapshot_id, now)
    snapshot = db.session.get(AirdropSnapshot, snapshot_id, populate_existing=True)
    if status != "done":
        raise click.ClickException(f"snapshot {snapshot_id} failed: {snapshot.error}")
    click.echo(f"eligible={snapshot.eligible_count} excluded={snapshot.excluded_count} root={snapshot.merkle_root}")
    click.echo(f"input_hash={snapshot.input_hash} result_hash={snapshot.result_hash}")
    click.echo(str(snapshot_id))


@airdrops_cli.command("export")
@click.argument("snapshot_id", type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory for tree.json and allocations.csv.")
@needs_schema
def export(snapshot_id: int, out_dir: str) -> None:
    """Write DIR/tree.json (the standard-v1 dump) and DIR/allocations.csv (address, amount in base units)."""
    snapshot = db.session.get(AirdropSnapshot, snapshot_id)
    if snapshot is None:
        raise click.ClickException(f"no snapshot {snapshot_id}")
    if snapshot.status != "done" or not snapshot.tree_dump:
        raise click.ClickException(f"snapshot {snapshot_id} has no tree (status {snapshot.status})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tree.json").write_text(snapshot.tree_dump)
    write_allocations_csv(snapshot_id, out / "allocations.csv")
    click.echo(f"wrote {out / 'tree.json'} and {out / 'allocations.csv'} (root {snapshot.merkle_root})")


def write_allocations_csv(snapshot_id: int, path: Path) -> None:
    rows = db.session.execute(
        db.select(SnapshotEntry.address, SnapshotEntry.amount)
        .where(SnapshotEntry.snapshot_id == snapshot_id, SnapshotEntry.tree_index.is_not(None))
        .order_by(SnapshotEntry.user_id)
    )
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["address", "amount"])
        for address, amount in rows:
            writer.writerow([address, amount])
