"""The widgets in real chromium on the work page: keyboard shortcuts, the live cleaning diff, drawing and
editing boxes (the hidden field stays in image pixels at any display size), the audio controls, and the
no-JavaScript fallbacks."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.labeling_ui.conftest import sign_in

pytestmark = pytest.mark.browser
QUIET = {"gold_rate_percent": 0, "review_rate_percent": 0, "min_level": 1}


def submissions_of(app, user_id: int) -> list:
    from sqlalchemy import select

    from sapien.extensions import db
    from sapien.labeling.models import Submission

    with app.app_context():
        rows = db.session.scalars(select(Submission).where(Submission.user_id == user_id).order_by(Submission.id)).all()
        db.session.expunge_all()
        return rows


def submitted(page, action) -> None:
    """Run `action` (a click or key press that submits) and wait until the next item (a new lease) is shown."""
    lease = page.locator("#answer-form input[name=lease_id]").input_value()
    action()
    expect(page.locator(".feedback")).to_be_visible()
    expect(page.locator("#answer-form input[name=lease_id]")).not_to_have_value(lease)


def test_the_answer_form_is_live_the_moment_it_appears(app, page, make_member, import_demo):
    """htmx wires swapped-in content only when it settles: with its default 20 ms settle delay, a key
    pressed right after the form appeared sent it as a plain form (no htmx, no time spent)."""
    import_demo("product-review-sentiment", **QUIET)
    member = make_member()
    sign_in(page, member)
    # Watch from before the page's own scripts: the Start form takes the item through htmx as it loads.
    page.add_init_script(
        """window.formSeenWiredUp = new Promise(resolve => {
            new MutationObserver((_records, observer) => {
                const form = document.querySelector("#answer-form");
                if (!form) return;
                observer.disconnect();
                resolve(Boolean(form.querySelector("[data-widget][data-ready]")));
            }).observe(document, {childList: true, subtree: true});
        });"""
    )
    page.goto("/packs/product-review-sentiment/work")
    assert page.evaluate("window.formSeenWiredUp") is True


def test_classification_by_keyboard_number_keys_and_enter(app, page, make_member, import_demo):
    import_demo("product-review-sentiment", **QUIET)
    member = make_member()
    sign_in(page, member)
    page.goto("/packs/product-review-sentiment/work")
    page.locator("#answer-form").wait_for()  # the Start form takes the item through htmx
    radios = page.locator("#answer-form input[name=label]")
    expect(radios).to_have_count(3)
    first_text = page.locator("#answer-form .passage").inner_text()
    page.keyboard.press("2")
    expect(radios.nth(1)).to_be_checked()
    expect(radios.nth(1)).to_be_focused()
    page.keyboard.press("3")
    expect(radios.nth(2)).to_be_checked()
    submitted(page, lambda: page.keyboard.press("Enter"))
    expect(page.locator("#answer-form .passage")).not_to_have_text(first_text)
    [submission] = submissions_of(app, member.id)
    assert submission.answer == {"labels": ["neutral"]}
    assert submission.time_spent_ms is not None and submission.time_spent_ms > 0

    # A multi-label pack: number keys toggle checkboxes.
    import_demo("news-headline-topics", **QUIET)
    page.goto("/packs/news-headline-topics/work")
    page.locator("#answer-form").wait_for()  # the Start form takes the item through htmx
    boxes = page.locator("#answer-form input[name=label]")
    page.keyboard.press("1")
    page.keyboard.press("5")
    page.keyboard.press("1")
    expect(boxes.nth(0)).not_to_be_checked()
    expect(boxes.nth(4)).to_be_checked()
    page.keyboard.press("2")
    submitted(page, lambda: page.keyboard.press("Enter"))
    assert submissions_of(app, member.id)[-1].answer == {"labels": ["health", "sport"]}


def test_image_classification_by_click_submit_button_and_digit_keys(app, page, make_member, import_demo):
    import_demo("handwritten-digits", **QUIET)
    member = make_member()
    sign_in(page, member)
    page.goto("/packs/handwritten-digits/work")
    page.locator("#answer-form").wait_for()  # the Start form takes the item through htmx
    image = page.locator("#answer-form .picture__img")
    expect(image).to_be_visible()
    # The item arrives after the page's load event (the Start form's htmx request): wait for its image.
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) == 112
    page.get_by_role("radio", name="4").check()
    submitted(page, lambda: page.get_by_role("button", name="Submit answer").click())
    assert submissions_of(app, member.id)[-1].answer == {"labels": ["4"]}
    # Digit labels answer to their own key: 0 picks "0", not the first choice's position.
    page.keyboard.press("0")
    expect(page.get_by_role("radio", name="0")).to_be_checked()
    submitted(page, lambda: page.keyboard.press("Enter"))
    assert submissions_of(app, member.id)[-1].answer == {"labels": ["0"]}


def test_cleaning_shows_a_live_diff_resets_and_submits_with_ctrl_enter(app, page, make_member, import_demo):
    import_demo("fix-the-typos", **QUIET)
    member = make_member()
    sign_in(page, member)
    page.goto("/packs/fix-the-typos/work")
    page.locator("#answer-form").wait_for()  # the Start form takes the item through htmx
    box = page.get_by_label("Corrected passage")
    original = box.input_value()
    diff = page.locator("[data-clean-diff]")
    expect(diff).to_have_text("No changes yet.")
    box.fill("Completely new words. " + original)
    expect(diff.locator("ins")).to_have_text("Completely new words. ")
    box.fill(original.replace(original.split()[0], "Zebra", 1))
    expect(diff.locator("del")).to_have_text(original.split()[0])
    expect(diff.locator("ins")).to_have_text("Zebra")
    # A change of spacing only is marked as the space itself, made visible.
    box.fill(original.replace(" ", "  ", 1))
    expect(diff.locator("ins")).to_have_text("·")
    expect(diff.locator("ins")).to_have_class("diff__space")
    expect(diff.locator("del")).to_have_count(0)
    page.get_by_role("button", name="Reset to original").click()
    expect(box).to_have_value(original)
    expect(box).to_be_focused()
    expect(diff).to_have_text("No changes yet.")
    box.fill(original + " Done")
    submitted(page, lambda: box.press("Control+Enter"))
    assert submissions_of(app, member.id)[-1].answer == {"text": original + " Done"}


def hidden_boxes(page) -> list[dict]:
    return json.loads(page.locator("#answer-form input[name=boxes]").input_value())


def test_boxes_drawn_moved_resized_and_deleted_with_mouse_and_keyboard(app, page, make_member, import_demo):
    import_demo("count-the-coins", **QUIET)
    member = make_member()
    sign_in(page, member)
    page.set_viewport_size({"width": 390, "height": 900})  # a phone: the picture is shown smaller or larger than its pixels
    page.goto("/packs/count-the-coins/work")
    page.locator("#answer-form").wait_for()  # the Start form takes the item through htmx
    widget = page.locator("[data-widget=bounding_boxes]")
    expect(widget.locator("[data-nojs-note]")).to_be_hidden()
    width, height = int(widget.get_attribute("data-width")), int(widget.get_attribute("data-height"))
    svg = widget.locator("svg.bbox__svg")
    area = svg.bounding_box()
    assert abs(area["width"] - width) > 5, "the test needs a display size different from the image size"
    assert svg.evaluate("el => getComputedStyle(el).touchAction") == "none"

    def at(fx, fy):
        return area["x"] + fx * area["width"], area["y"] + fy * area["height"]

    # Draw from 10% to 50% of the picture.
    page.mouse.move(*at(0.1, 0.1))
    page.mouse.down()
    page.mouse.move(*at(0.3, 0.3), steps=4)
    page.mouse.move(*at(0.5, 0.5), steps=4)
    page.mouse.up()
    [box] = hidden_boxes(page)
    assert box["label"] == "coin"
    assert abs(box["x"] - 0.1 * width) <= 2 and abs(box["y"] - 0.1 * height) <= 2
    assert abs(box["w"] - 0.4 * width) <= 2 and abs(box["h"] - 0.4 * height) <= 2
    expect(widget.locator("[data-bbox-list] li")).to_have_count(1)
    expect(widget.locator("[data-bbox-count]")).to_have_text("1")
    rect = svg.locator("rect.bbox__box")
    expect(rect).to_be_focused()

    # Move it by dragging its middle by 10% of the picture.
    page.mouse.move(*at(0.3, 0.3))
    page.mouse.down()
    page.mouse.move(*at(0.4, 0.35), steps=4)
    page.mouse.up()
    [moved] = hidden_boxes(page)
    assert abs(moved["x"] - (box["x"] + 0.1 * width)) <= 2 and abs(moved["y"] - (box["y"] + 0.05 * height)) <= 2
    assert (moved["w"], moved["h"]) == (box["w"], box["h"])

    # Resize with the bottom-right handle.
    handle = svg.locator("[data-handle=se]").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(*at(0.9, 0.9), steps=4)
    page.mouse.up()
    [resized] = hidden_boxes(page)
    assert (resized["x"], resized["y"]) == (moved["x"], moved["y"])
    assert abs(resized["x"] + resized["w"] - 0.9 * width) <= 2 and abs(resized["y"] + resized["h"] - 0.9 * height) <= 2

    # Keyboard: arrows move by 1 px, Alt by 10, Shift resizes; the box never leaves the picture.
    rect.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Alt+ArrowUp")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowUp")
    [keyed] = hidden_boxes(page)
    assert keyed == {**resized, "x": resized["x"] - 1, "y": resized["y"] - 10, "w": resized["w"] + 1, "h": resized["h"] - 1}
    for _ in range(40):
        page.keyboard.press("Alt+ArrowRight")
    [edge] = hidden_boxes(page)
    assert edge["x"] + edge["w"] == width

    # N adds a box in the centre; Tab moves between boxes; Delete removes the focused one.
    page.keyboard.press("n")
    assert len(hidden_boxes(page)) == 2
    centre = hidden_boxes(page)[1]
    assert abs(centre["x"] + centre["w"] / 2 - width / 2) <= 1
    page.keyboard.press("Shift+Tab")
    expect(rect.first).to_be_focused()
    page.keyboard.press("Delete")
    assert hidden_boxes(page) == [centre]
    expect(widget.locator("[data-bbox-status]")).to_have_text("Box 1 deleted.")

    # The list below the picture deletes too (for screen reader and keyboard users).
    widget.get_by_role("button", name="Delete box 1").click()
    assert hidden_boxes(page) == []
    expect(widget.locator("[data-bbox-empty]")).to_be_visible()

    # Draw one more and submit: the answer stored is exactly the hidden field.
    page.mouse.move(*at(0.2, 0.2))
    page.mouse.down()
    page.mouse.move(*at(0.6, 0.7), steps=5)
    page.mouse.up()
    drawn = hidden_boxes(page)
    submitted(page, lambda: page.get_by_role("button", name="Submit answer").click())
    assert submissions_of(app, member.id)[-1].answer == {"boxes": drawn}


def test_box_labels_are_picked_per_box(app, page, make_member, import_demo):
    import_demo("count-the-coins", label_options=["coin", "button"], **QUIET)
    member = make_member()
    sign_in(page, member)
    page.goto("/packs/count-the-coins/work")
    page.locator("#answer-form").wait_for()  # the Start form takes the item through htmx
    widget = page.locator("[data-widget=bounding_boxes]")
    widget.get_by_label("Label for new boxes").select_option("button")
    widget.get_by_role("button", name="New box").click()
    assert hidden_boxes(page)[0]["label"] == "button"
    page.keyboard.press("1")  # on the focused box: the first label
    assert hidden_boxes(page)[0]["label"] == "coin"
    widget.get_by_label("Label of box 1").select_option("button")
    assert hidden_boxes(page)[0]["label"] == "button"
    submitted(page, lambda: page.get_by_role("button", name="Submit answer").click())
    assert submissions_of(app, member.id)[-1].answer["boxes"][0]["label"] == "button"


def test_audio_controls_loop_speed_and_shortcuts(app, page, make_member, import_demo):
    import_demo("transcribe-short-sentences", **QUIET)
    member = make_member()
    sign_in(page, member)
    page.goto("/packs/transcribe-short-sentences/work")
    page.locator("#answer-form").wait_for()  # the Start form takes the item through htmx
    audio = page.locator("#answer-form audio")
    page.wait_for_function("() => document.querySelector('#answer-form audio').readyState >= 1")
    assert page.evaluate("() => document.querySelector('#answer-form audio').duration") > 0.8
    loop = page.get_by_role("button", name="Loop")
    loop.click()
    expect(loop).to_have_attribute("aria-pressed", "true")
    assert audio.evaluate("a => a.loop") is True
    page.get_by_role("button", name="1.25×").click()
    assert audio.evaluate("a => a.playbackRate") == 1.25
    expect(page.get_by_role("button", name="1×")).to_have_attribute("aria-pressed", "false")
    transcript = page.get_by_label("Transcript")
    transcript.fill("The quick")
    # Ctrl+Space plays from inside the text box without typing a space.
    transcript.press("Control+Space")
    page.wait_for_function("() => !document.querySelector('#answer-form audio').paused")
    expect(transcript).to_have_value("The quick")
    transcript.press("Control+Space")
    page.wait_for_function("() => document.querySelector('#answer-form audio').paused")
    audio.evaluate("a => { a.currentTime = 1.5; }")
    page.get_by_role("button", name="Replay last 3 s").click()
    page.wait_for_function("() => !document.querySelector('#answer-form audio').paused")
    assert audio.evaluate("a => a.currentTime") < 1.2
    transcript.fill("The quick brown fox jumps over the lazy dog.")
    submitted(page, lambda: transcript.press("Control+Enter"))
    assert submissions_of(app, member.id)[-1].answer == {"text": "The quick brown fox jumps over the lazy dog."}


def test_without_javascript_classification_posts_and_boxes_explain(app, browser, live_server, make_member, import_demo):
    import_demo("product-review-sentiment", **QUIET)
    import_demo("count-the-coins", **QUIET)
    member = make_member()
    context = browser.new_context(base_url=live_server, java_script_enabled=False, locale="en-US")
    page = context.new_page()
    try:
        sign_in(page, member)
        page.goto("/packs/product-review-sentiment/work")
        page.get_by_role("button", name="Start").click()  # without JavaScript the Start form is posted by hand
        page.locator("#answer-form").wait_for()
        page.get_by_role("radio", name="positive").check()
        submitted(page, lambda: page.get_by_role("button", name="Submit answer").click())
        assert submissions_of(app, member.id)[-1].answer == {"labels": ["positive"]}
        page.goto("/packs/count-the-coins/work")
        page.get_by_role("button", name="Start").click()
        page.locator("#answer-form").wait_for()
        expect(page.get_by_text("Drawing boxes needs JavaScript")).to_be_visible()
        expect(page.get_by_role("button", name="New box")).to_be_hidden()
    finally:
        context.close()
