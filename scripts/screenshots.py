"""Regenerate docs/screenshots/: the main pages at 1280 px and 390 px, light and dark.

    DATABASE_URL=postgresql://…/sapien_shots REDIS_URL=redis://127.0.0.1:6379/N .venv/bin/python scripts/screenshots.py [NAME …]

With names (landing, dashboard, levelup, badge, labeling, leaderboards, guild) only those are taken.

It upgrades the schema and seeds the demo data if the database is empty, serves the app in-process on a
free port, signs in as the demo member and drives chromium (/usr/bin/chromium, or CHROMIUM=…) through
the landing page, the dashboard, a level-up (a quest reward claimed just below the next level), a badge,
a labeling page, the leaderboards and a guild. PNGs are palette-quantised with Pillow when it is
installed, to keep them small.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDTHS = {"desktop": (1280, 860), "mobile": (390, 844)}
SCHEMES = ("light", "dark")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(app) -> None:
    from flask_migrate import upgrade

    from sapien.database import utcnow
    from sapien.demo import seed_demo

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed_demo(members=300, now=utcnow())
        from sapien.leaderboards.rebuild import rebuild_all

        rebuild_all(utcnow())  # the boards are a cache: make sure they are there for the league and the ranks


def near_level_up(app, username: str) -> str:
    """Put the member a few XP short of their next level with a finished quest whose reward crosses it."""
    from sapien import events
    from sapien.accounts.service import get_by_username
    from sapien.database import utcnow
    from sapien.ledger import service as ledger
    from sapien.progression import levels, quests

    with app.app_context():
        now = utcnow()
        user = get_by_username(username)
        moderator = get_by_username("demo_moderator")
        xp = ledger.balance(user.id, "xp")
        progress = levels.level_progress(xp)
        short = progress.next_level_at - xp - 5
        if short > 0:
            ledger.credit(user.id, "xp", short, kind="bonus", key=f"screenshots:{now.isoformat()}", now=now)
        title = f"Screenshot sprint {now:%H%M%S}"
        quests.create_quest(
            quests.QuestDefinition(title=title, period="daily", objective="label_items", target=1,
                                        starts_at=now - timedelta(days=1), reward_xp=50, reward_points=20),
            actor_id=moderator.id, now=now,
        )
        events.submission_accepted.send(None, user_id=user.id, submission_id=0, pack_id=1, task_type="text_classification",
                                        xp=0, points=0, now=now)
        return title


def end_quest(app, title: str) -> None:
    """Close the quest made for the level-up, so it does not linger on the next run's pages."""
    from sqlalchemy import update

    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.progression.models import Quest

    with app.app_context():
        db.session.execute(update(Quest).where(Quest.title == title).values(ends_at=utcnow()))
        db.session.commit()


def shrink(path: Path) -> None:
    try:
        from PIL import Image
    except ImportError:
        return
    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> int:
    from playwright.sync_api import expect, sync_playwright
    from werkzeug.serving import make_server

    from sapien import create_app

    app = create_app()
    prepare(app)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    OUT.mkdir(parents=True, exist_ok=True)
    with app.app_context():
        from sqlalchemy import select

        from sapien.extensions import db
        from sapien.guilds.models import Guild
        from sapien.labeling.models import TaskPack

        guild_slug = db.session.scalar(select(Guild.slug).order_by(Guild.id).limit(1))
        pack_slug = db.session.scalar(select(TaskPack.slug).where(TaskPack.min_level <= 1, TaskPack.exam_required.is_(False))
                                      .order_by(TaskPack.id).limit(1))
    pages = [
        ("landing", "/", False),
        ("dashboard", "/dashboard", True),
        ("badge", "/badges/first-label", True),
        ("labeling", f"/packs/{pack_slug}/work", True),
        ("leaderboards", "/leaderboards/league", True),
        ("guild", f"/guilds/{guild_slug}", True),
    ]
    wanted = set(sys.argv[1:])
    if wanted:
        pages = [entry for entry in pages if entry[0] in wanted]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for scheme in SCHEMES:
            for size_name, (width, height) in WIDTHS.items():
                context = browser.new_context(base_url=base, viewport={"width": width, "height": height}, color_scheme=scheme,
                                              reduced_motion="reduce", locale="en-US", timezone_id="UTC")
                page = context.new_page()
                signed = False
                for name, path, signed_in in [*pages, ("", "", True)]:
                    if signed_in and not signed:
                        signed = True
                        page.goto("/login")
                        page.fill("input[name=login]", "demo_member")
                        page.fill("input[name=password]", "sapien-demo-2026")
                        page.click("button[type=submit]")
                        page.wait_for_url("**/dashboard")
                    if not name:
                        break  # signed in for the level-up, whatever pages were taken
                    page.goto(path)
                    if name == "labeling" and page.get_by_role("button", name="Start").count():
                        page.get_by_role("button", name="Start").click()  # the work page leases an item on Start
                        expect(page.get_by_role("button", name="Submit answer")).to_be_visible()
                    page.screenshot(path=OUT / f"{name}-{size_name}-{scheme}.png")
                    shrink(OUT / f"{name}-{size_name}-{scheme}.png")
                    print(f"{name}-{size_name}-{scheme}.png")
                if wanted and "levelup" not in wanted:
                    page.close()
                    context.close()
                    continue
                title = near_level_up(app, "demo_member")
                page.goto("/quests")
                page.locator(".quest", has_text=title).get_by_role("button", name="Claim reward").click()
                expect(page.locator("dialog.levelup")).to_be_visible()
                page.screenshot(path=OUT / f"levelup-{size_name}-{scheme}.png")
                shrink(OUT / f"levelup-{size_name}-{scheme}.png")
                print(f"levelup-{size_name}-{scheme}.png")
                end_quest(app, title)
                page.close()
                context.close()
        browser.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
