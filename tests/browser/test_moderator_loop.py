"""Issue 10's check in real chromium: a moderator goes from a new draft pack, to an upload with plain CSV
gold, to publishing, to the results browser (overriding a label with a reason), to an export, without
typing a URL after signing in. Members' answers come in through the real lease and submit path."""

from __future__ import annotations

import csv

import pytest
from playwright.sync_api import expect

from tests.conftest import decide_items

pytestmark = pytest.mark.browser

ITEMS_CSV = (
    "external_id,text,gold,explanation\n"
    "r1,The battery lasts all day.,,\n"
    "r2,It broke after a week.,,\n"
    "g1,Wonderful and sturdy.,positive,Praise is positive.\n"
)


def sign_in(page, member) -> None:
    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")


def members_answer(app, slug: str, answers: dict[str, list[str]]) -> None:
    """Each named member answers the pack's ordinary items through labeling's real lease + submit path; then
    the decision job weighs the answers."""
    from sqlalchemy import select

    from sapien.accounts.models import User
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import leases, packs, submissions
    from sapien.labeling.models import Item

    with app.test_request_context():
        pack = packs.get_pack_by_slug(slug)
        items = {item.external_id: item.id for item in db.session.scalars(select(Item).where(Item.pack_id == pack.id, Item.is_gold.is_(False)))}
        for username, labels in answers.items():
            user_id = db.session.scalar(select(User.id).where(User.username == username))
            for external_id, value in zip(("r1", "r2"), labels, strict=True):
                lease = leases.lease_item(user_id, items[external_id], utcnow())
                submissions.submit_answer(user_id, lease.id, {"labels": [value]}, now=utcnow())
        decide_items()  # the decision job, as the worker runs it


def test_a_moderator_goes_from_a_draft_to_an_export_without_typing_a_url(app, browser, live_server, page, make_member, tmp_path):
    moderator = make_member("loop_moderator", role="moderator")
    make_member("loop_ann")
    make_member("loop_ben")
    items_file = tmp_path / "items.csv"
    items_file.write_text(ITEMS_CSV, encoding="utf-8")

    sign_in(page, moderator)
    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".navgroup > summary", has_text="Moderation").click()  # the moderators' pages sit in the Moderation menu
    nav.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Campaign name").fill("Loop reviews")
    page.get_by_role("button", name="Create the campaign").click()

    # A new pack is a draft.
    page.get_by_label("Pack name").fill("Loop sentiment")
    page.get_by_label("Address (slug)").fill("loop-sentiment")
    page.get_by_label("Labels, one per line (classification and boxes)").fill("positive\nnegative")
    page.get_by_label("Labels wanted per item").fill("2")
    page.get_by_label("At most labels per item (when members disagree)").fill("2")
    page.get_by_label("Gold items mixed in (%)").fill("0")
    page.get_by_label("Submissions sampled for review (%)").fill("0")
    page.get_by_role("button", name="Create the pack").click()
    expect(page.get_by_role("heading", name="Upload items to Loop sentiment")).to_be_visible()
    expect(page.locator(".managebar")).to_contain_text("Draft")

    # Publishing an empty draft is refused, with the reason.
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".toast", has_text="no items to label yet")).to_be_visible()

    # The upload page documents the plain gold format; the CSV uses it (gold=positive, no JSON).
    expect(page.locator("#items-format")).to_contain_text("the label, or labels separated by | when the pack allows several")
    expect(page.get_by_role("link", name="Example for Text classification")).to_be_visible()
    page.wait_for_load_state("load")
    page.get_by_label("Items file (.jsonl or .csv)").set_input_files(str(items_file))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#upload")).to_contain_text("This pack has 2 items (1 gold, 0 exam).")

    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".managebar")).to_contain_text("Open")

    # Members answer: they agree on r1 and split on r2.
    members_answer(app, "loop-sentiment", {"loop_ann": ["positive", "negative"], "loop_ben": ["positive", "positive"]})

    # From the Campaigns page to the results, then the item browser.
    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".navgroup > summary", has_text="Moderation").click()  # the moderators' pages sit in the Moderation menu
    nav.get_by_role("link", name="Campaigns").click()
    page.get_by_role("row", name="Loop sentiment").get_by_role("link", name="Results").click()
    expect(page.get_by_role("heading", name="Results: Loop sentiment")).to_be_visible()
    expect(page.locator("#results")).to_contain_text("Online vote (weighted by member accuracy)")
    page.get_by_role("link", name="Browse items").click()
    page.wait_for_load_state("load")
    expect(page.locator("#result-items")).to_contain_text("3 items match.")
    page.get_by_label("Answers").select_option("disagree")
    expect(page.locator("#result-items")).to_contain_text("1 item matches.")
    card = page.locator(".result-item", has_text="r2")
    expect(card).to_contain_text("loop_ann")

    # The split item's answers never agreed (two voices, two answers): the moderator sets its label, with
    # a reason, which is required.
    card.get_by_text("Set the label").click()
    card.get_by_label("The answer that stands").fill("negative")
    card.get_by_role("button", name="Override").click()
    card = page.locator(".result-item", has_text="r2")
    expect(card.locator(".field__error")).to_contain_text("Give a reason for the override")
    card.get_by_label("Reason (required; kept with the label and in the audit log)").fill("Breaking after a week is a complaint.")
    card.get_by_label("The answer that stands").fill("negative")
    card.get_by_role("button", name="Override").click()
    card = page.locator(".result-item", has_text="r2")
    expect(card.locator(".result-item__method")).to_contain_text("Moderator override")
    expect(card).to_contain_text("Breaking after a week is a complaint.")

    # The export carries the override.
    with page.expect_download(timeout=10_000) as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename == "loop-sentiment-labels.csv"
    with open(download.path(), encoding="utf-8") as handle:
        rows = {row["external_id"]: row for row in csv.DictReader(handle)}
    assert rows["r2"]["answer"] == "negative" and rows["r2"]["method"] == "moderator_override"
    assert rows["r2"]["override_reason"] == "Breaking after a week is a complaint."
    assert rows["r1"]["answer"] == "positive" and rows["r1"]["method"] == "online_vote"
