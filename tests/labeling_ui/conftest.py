"""Fixtures for the widget tests: the demo pack folders (written once per run) imported on demand."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_folders(tmp_path_factory) -> dict[str, Path]:
    from sapien.labeling.seeding import write_demo_packs

    return {folder.name: folder for folder in write_demo_packs(tmp_path_factory.mktemp("demo-packs"))}


@pytest.fixture
def import_demo(app, demo_folders):
    """Import one demo pack folder; `settings` override pack columns (e.g. no gold, open to level 1)."""

    def go(slug: str, **settings):
        from sqlalchemy import update

        from sapien.database import unit_of_work, utcnow
        from sapien.extensions import db
        from sapien.labeling import imports
        from sapien.labeling.models import TaskPack

        with app.app_context():
            pack, report = imports.import_pack_folder(demo_folders[slug], actor_id=None, now=utcnow())
            assert not report.problems, report.problems
            if settings:
                with unit_of_work():
                    db.session.execute(update(TaskPack).where(TaskPack.id == pack.id).values(**settings))
            return pack.id

    return go


def sign_in(page, member) -> None:
    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
