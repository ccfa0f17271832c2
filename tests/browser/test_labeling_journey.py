"""The labeling journey in real chromium: a member goes from the marketplace through every task type
(classification by keyboard, cleaning, an image label, a box drawn with the mouse, a transcription), gets
gold feedback, has an answer reviewed by a reviewer in a second browser, sees rewards and reputation move,
and a moderator exports the verified labels as JSONL."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from sapien.labeling import demo_texts
from tests.conftest import decide_items

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_folders(tmp_path_factory):
    from sapien.labeling.seeding import write_demo_packs

    return {folder.name: folder for folder in write_demo_packs(tmp_path_factory.mktemp("journey-packs"))}


def import_pack(slug: str, folders, **settings) -> int:
    from sqlalchemy import update

    from sapien.database import unit_of_work, utcnow
    from sapien.extensions import db
    from sapien.labeling import imports
    from sapien.labeling.models import TaskPack

    pack, report = imports.import_pack_folder(folders[slug], actor_id=None, now=utcnow())
    assert not report.problems, report.problems
    with unit_of_work():
        db.session.execute(update(TaskPack).where(TaskPack.id == pack.id).values(**settings))
    return pack.id


def sign_in(page, member) -> None:
    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")


def points_in_nav(page) -> int:
    text = page.locator("#statusbar .balance").first.inner_text()
    return int(re.sub(r"\D", "", text) or 0)


def start_from_marketplace(page, pack_name: str) -> None:
    page.goto("/work")
    card = page.locator(".packcard").filter(has=page.get_by_role("link", name=pack_name, exact=True))
    card.get_by_role("link", name="Start").click()
    expect(page.locator("#answer-form")).to_be_visible()


def submitted(page, action) -> None:
    """Submit (by click or key) and wait for the answer's feedback and the next item."""
    lease = page.locator("#answer-form input[name=lease_id]").input_value()
    action()
    page.wait_for_function(
        "old => { const lease = document.querySelector('#answer-form input[name=lease_id]');"
        " return document.querySelector('.feedback') && (!lease || lease.value !== old); }",
        arg=lease,
    )


def test_member_labels_every_task_type_is_reviewed_and_a_moderator_exports(app, browser, live_server, page, make_member, demo_folders):
    from sqlalchemy import select

    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import leases, submissions
    from sapien.labeling.models import Item

    member = make_member("journey_member")
    reviewer = make_member("journey_reviewer", role="reviewer")
    moderator = make_member("journey_moderator", role="moderator")
    others = [make_member(f"crowd_{n}") for n in range(2)]
    quiet = {"gold_rate_percent": 0, "review_rate_percent": 0}
    with app.app_context():
        # Three newcomers agreeing are not sure enough to retire an item early (issue 18), so the pack's cap is
        # three answers: the third retires the item with the label they agree on.
        sentiment = import_pack("product-review-sentiment", demo_folders, labels_per_item=3, max_labels_per_item=3, **quiet)
        digits = import_pack("handwritten-digits", demo_folders, **quiet)
        import_pack("fix-the-typos", demo_folders, gold_rate_percent=0, review_rate_percent=100)
        import_pack("count-the-coins", demo_folders, min_level=1, **quiet)
        import_pack("transcribe-short-sentences", demo_folders, **quiet)
        # Two other members already labelled the first ordinary review rightly; the member's answer completes it.
        first = db.session.scalars(select(Item).where(Item.pack_id == sentiment, Item.is_gold.is_(False)).order_by(Item.id)).first()
        crowd_external_id = first.external_id
        review_text, crowd_label, _ = demo_texts.REVIEWS[int(crowd_external_id.split("-")[1]) - 1]
        for other in others:
            lease = leases.lease_next_item(other.id, sentiment, utcnow())
            assert lease.item_id == first.id
            submissions.submit_answer(other.id, lease.id, {"labels": [crowd_label]}, now=utcnow())
        # A known-answer digit is waiting for the member (gold items are otherwise mixed in at random).
        gold = db.session.scalars(select(Item).where(Item.pack_id == digits, Item.is_gold.is_(True), Item.is_exam.is_(False))
                                  .order_by(Item.id)).first()
        gold_label = gold.gold_answer["labels"][0]
        leases.lease_item(member.id, gold.id, utcnow())

    sign_in(page, member)
    page.goto("/work")
    points_before = points_in_nav(page)

    # 1. Text classification by keyboard: the label's number, then Enter.
    start_from_marketplace(page, "Sentiment of product reviews")
    expect(page.locator("#answer-form .passage")).to_have_text(review_text)
    page.keyboard.press(str(["positive", "negative", "neutral"].index(crowd_label) + 1))
    submitted(page, lambda: page.keyboard.press("Enter"))
    expect(page.locator(".feedback")).to_contain_text("accepted")
    expect(page.locator(".feedback__earned")).to_contain_text("pending")  # paid once verified
    expect(page.locator("#nav-pending")).to_be_visible()

    # 2. Image classification on a known-answer item, answered wrong: instant feedback with the right answer.
    start_from_marketplace(page, "Handwritten digits")
    wrong = str((int(gold_label) + 1) % 10)
    page.keyboard.press(wrong)
    expect(page.get_by_role("radio", name=wrong)).to_be_checked()
    submitted(page, lambda: page.keyboard.press("Enter"))
    feedback = page.locator(".feedback")
    expect(feedback).to_contain_text("Not quite")
    expect(feedback.locator(".chip")).to_have_text(gold_label)
    expect(feedback).to_contain_text(f"This scan is a {gold_label}")

    # 3. Text cleaning: fix the passage; every answer in this pack goes to a reviewer.
    start_from_marketplace(page, "Fix the typos")
    passage = page.get_by_label("Corrected passage")
    clean = demo_texts.CLEAN_PASSAGES[1]  # passage-002, the first one that is not a known-answer item
    passage.fill(clean)
    expect(page.locator("[data-clean-diff] ins").first).to_be_visible()
    submitted(page, lambda: passage.press("Control+Enter"))
    expect(page.locator(".feedback")).to_contain_text("A reviewer will check this answer")

    # 4. Bounding boxes: draw one around the middle of the picture with the mouse.
    start_from_marketplace(page, "Count the coins")
    surface = page.locator("svg.bbox__svg").bounding_box()
    page.mouse.move(surface["x"] + surface["width"] * 0.25, surface["y"] + surface["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(surface["x"] + surface["width"] * 0.75, surface["y"] + surface["height"] * 0.75, steps=6)
    page.mouse.up()
    expect(page.locator("[data-bbox-count]")).to_have_text("1")
    boxes = json.loads(page.locator("input[name=boxes]").input_value())
    assert len(boxes) == 1 and boxes[0]["label"] == "coin"
    submitted(page, lambda: page.get_by_role("button", name="Submit answer").click())

    # 5. Audio transcription: play, type, Ctrl+Enter.
    start_from_marketplace(page, "Transcribe short sentences")
    transcript = page.get_by_label("Transcript")
    transcript.press("Control+Space")
    page.wait_for_function("() => !document.querySelector('#answer-form audio').paused")
    transcript.fill(demo_texts.SPOKEN_SENTENCES[1])
    submitted(page, lambda: transcript.press("Control+Enter"))

    # The member's answer completed the crowd's review item: the decision job verifies it and the settlement
    # job pays it (the worker's jobs, run here).
    with app.app_context():
        from jobs.labeling import settle_rewards

        assert decide_items() >= 1
        assert settle_rewards() >= 1
    page.goto("/work")
    points_after_work = points_in_nav(page)
    assert points_after_work > points_before

    # A reviewer, in a browser of their own, accepts the cleaned passage.
    reviewer_context = browser.new_context(base_url=live_server, locale="en-US", timezone_id="UTC")
    try:
        review_page = reviewer_context.new_page()
        sign_in(review_page, reviewer)
        review_page.goto("/review")
        review_page.get_by_role("button", name="Review the next answer").click()
        answer = review_page.locator(".review__item .answer")
        expect(answer).to_be_visible()
        expect(answer.locator("del, ins").first).to_be_visible()
        review_page.get_by_label("Reason (required to reject; the member sees it)").fill("Clean and complete.")
        review_page.get_by_role("button", name="Accept", exact=True).click()
        expect(review_page.get_by_text("Accepted. Thank you!")).to_be_visible()
    finally:
        reviewer_context.close()

    # The member's points move once the accepted (so verified) review is settled; the reputation page shows the
    # gold miss and the review.
    with app.app_context():
        assert decide_items() == 1
        assert settle_rewards() == 1
    page.goto("/work")
    assert points_in_nav(page) > points_after_work
    page.goto("/reputation")
    score = int(page.locator("#reputation .stat__value").inner_text().split()[0])
    assert score != 500
    history = page.locator("#reputation table tbody")
    expect(history.locator("tr", has_text="Known-answer item").locator(".neg")).to_have_count(1)  # the missed digit
    expect(history.locator("tr", has_text="Review of your work").locator(".pos")).to_have_count(1)  # the accepted fix
    expect(history.locator("tr", has_text="Agreement with the verified label").locator(".pos")).to_have_count(1)

    # A moderator downloads the verified labels: the review the crowd agreed on is there.
    moderator_context = browser.new_context(base_url=live_server, locale="en-US", timezone_id="UTC", accept_downloads=True)
    try:
        moderator_page = moderator_context.new_page()
        sign_in(moderator_page, moderator)
        moderator_page.goto("/manage/packs/product-review-sentiment/results")
        verified = moderator_page.locator(".card", has_text="Items verified").locator(".stat__value")
        expect(verified).to_have_text("1")
        # A plain download: the link must not be boosted by htmx (hx-boost="false"), or the file lands in the page.
        with moderator_page.expect_download(timeout=10_000) as download_info:
            moderator_page.get_by_role("link", name="Export JSONL").click()
        download = download_info.value
        assert download.suggested_filename == "product-review-sentiment-labels.jsonl"
        lines = download.path().read_text("utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        [record] = records
        assert record["external_id"] == crowd_external_id and record["answer"] == {"labels": [crowd_label]}
        assert member.id in record["contributor_ids"] and len(record["contributor_ids"]) == 3
    finally:
        moderator_context.close()
