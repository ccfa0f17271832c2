"""The answer widgets and the read-only display, rendered by the app's Jinja: what a browser without
JavaScript would post parses into the canonical answer, priors are re-shown, text is escaped."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import MultiDict

from sapien.labeling.models import Item, Media, TaskPack


class FormFields(HTMLParser):
    """What a browser would submit from the rendered HTML: checked radios/checkboxes, hidden inputs, textareas."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.tags: list[tuple[str, dict]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "input" and attributes.get("name"):
            kind = attributes.get("type", "text")
            if kind not in ("radio", "checkbox") or "checked" in attributes:
                self.fields.append((attributes["name"], attributes.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = attributes.get("name"), ""

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None:
            # A browser drops the one newline that may follow <textarea>.
            self.fields.append((self._textarea, self._text[1:] if self._text.startswith("\n") else self._text))
            self._textarea = None


def parsed(html: str) -> FormFields:
    parser = FormFields()
    parser.feed(html)
    return parser


@pytest.fixture
def render(app):
    from flask import render_template

    def go(pack, item, *, media=None, media_url=None, prior=None, field_prefix=""):
        with app.test_request_context():
            return render_template(f"labeling/widgets/{pack.task_type}.html", pack=pack, item=item, media=media,
                                   media_url=media_url, prior=prior, field_prefix=field_prefix)

    return go


def pack_of(task_type, **settings):
    return TaskPack(name="Demo", slug="demo", task_type=task_type, **settings)


def canonical(app, pack, item, html, media=None):
    from sapien.labeling import answers

    with app.test_request_context():
        answer = answers.parse_answer_form(pack, item, MultiDict(parsed(html).fields))
        return answers.validate_answer(pack, item, answer, media=media)


def test_single_label_classification_renders_radios_with_number_shortcuts(app, render):
    pack = pack_of("text_classification", label_options=["positive", "negative", "neutral"], multi_label=False)
    item = Item(id=7, payload={"text": "Great <b>kettle</b> & quick"})
    html = render(pack, item)
    inputs = [attrs for tag, attrs in parsed(html).tags if tag == "input"]
    assert [(i["type"], i["name"], i["value"], i["data-shortcut"]) for i in inputs] == [
        ("radio", "label", "positive", "1"), ("radio", "label", "negative", "2"), ("radio", "label", "neutral", "3")]
    assert all(f'for="{i["id"]}"' in html for i in inputs), "every choice has its label"
    assert "Great &lt;b&gt;kettle&lt;/b&gt; &amp; quick" in html
    assert '<kbd class="choice__key" aria-hidden="true">2</kbd>' in html
    # Nothing chosen yet: a plain form post has no label, which the server refuses.
    from sapien.labeling.errors import InvalidAnswer

    with pytest.raises(InvalidAnswer):
        canonical(app, pack, item, html)


def test_more_than_nine_labels_leave_the_tenth_without_a_key(app, render):
    pack = pack_of("text_classification", label_options=[f"topic {n}" for n in range(1, 12)], multi_label=True)
    html = render(pack, Item(id=3, payload={"text": "x"}))
    shortcuts = [attrs["data-shortcut"] for tag, attrs in parsed(html).tags if tag == "input"]
    assert shortcuts == [str(n) for n in range(1, 10)] + ["", ""]


def test_prior_answer_is_checked_again_and_posts_back_unchanged(app, render):
    pack = pack_of("text_classification", label_options=["business", "health", "sport"], multi_label=True)
    item = Item(id=8, payload={"text": "Club sold"})
    html = render(pack, item, prior={"labels": ["business", "sport"]}, field_prefix="fix-")
    kinds = {attrs["type"] for tag, attrs in parsed(html).tags if tag == "input"}
    assert kinds == {"checkbox"}
    assert parsed(html).fields == [("fix-label", "business"), ("fix-label", "sport")]
    plain = render(pack, item, prior={"labels": ["business", "sport"]})
    assert canonical(app, pack, item, plain) == {"labels": ["business", "sport"]}


def test_image_classification_shows_the_picture_with_its_size_and_alt(app, render):
    pack = pack_of("image_classification", label_options=[str(d) for d in range(10)], multi_label=False)
    item = Item(id=9, payload={"alt": "A handwritten digit"}, media_id=3)
    media = Media(id=3, kind="image", width=112, height=112)
    html = render(pack, item, media=media, media_url="/media/3", prior={"labels": ["7"]})
    img = next(attrs for tag, attrs in parsed(html).tags if tag == "img")
    assert img["src"] == "/media/3" and img["alt"] == "A handwritten digit" and img["width"] == "112"
    assert "picture__img--pixelated" in img["class"]
    # Digit labels answer to their own key (0 for "0"), not to their position.
    shortcuts = [attrs["data-shortcut"] for tag, attrs in parsed(html).tags if tag == "input"]
    assert shortcuts == [str(n) for n in range(10)]
    assert canonical(app, pack, item, html, media=media) == {"labels": ["7"]}


def test_text_cleaning_is_prefilled_with_the_passage_and_keeps_the_original_for_the_diff(app, render):
    pack = pack_of("text_cleaning", label_options=[])
    passage = 'He said "hello"  to <Ann> & left.'
    item = Item(id=10, payload={"text": passage})
    html = render(pack, item)
    textarea = next(attrs for tag, attrs in parsed(html).tags if tag == "textarea")
    assert textarea["data-original"] == passage and textarea["name"] == "text"
    assert parsed(html).fields == [("text", passage)]
    assert canonical(app, pack, item, html) == {"text": passage}
    # The reset button and the live preview only appear when the script runs.
    assert re.search(r'<div class="clean__tools" data-needs-js hidden>', html)
    edited = render(pack, item, prior={"text": "He said hello."})
    assert parsed(edited).fields == [("text", "He said hello.")]


def test_audio_transcription_has_the_player_controls_and_a_bounded_transcript(app, render):
    pack = pack_of("audio_transcription", label_options=[])
    item = Item(id=11, payload={"alt": "A voice reading a sentence"}, media_id=4)
    html = render(pack, item, media=Media(id=4, kind="audio", duration_ms=2300), media_url="/media/4")
    tags = parsed(html).tags
    audio = next(attrs for tag, attrs in tags if tag == "audio")
    assert audio["src"] == "/media/4" and "controls" in audio
    textarea = next(attrs for tag, attrs in tags if tag == "textarea")
    assert textarea["maxlength"] == "5000" and textarea["name"] == "text"
    speeds = [attrs["data-audio-speed"] for tag, attrs in tags if "data-audio-speed" in attrs]
    assert speeds == ["0.75", "1", "1.25"]
    assert any("data-audio-loop" in attrs and attrs["aria-pressed"] == "false" for _tag, attrs in tags)
    from sapien.labeling.errors import InvalidAnswer

    with pytest.raises(InvalidAnswer):  # an empty transcript is refused
        canonical(app, pack, item, html)
    typed = render(pack, item, prior={"text": "The sun rises in the east."})
    assert canonical(app, pack, item, typed) == {"text": "The sun rises in the east."}


def test_bounding_boxes_carry_the_boxes_in_image_pixels_and_explain_the_need_for_javascript(app, render):
    pack = pack_of("bounding_boxes", label_options=["cell", "debris"])
    item = Item(id=12, payload={"alt": "Cells"}, media_id=5)
    media = Media(id=5, kind="image", width=320, height=200)
    prior = {"boxes": [{"x": 10, "y": 20, "w": 30, "h": 40, "label": "cell"}, {"x": 0, "y": 0, "w": 5, "h": 5, "label": "debris"}]}
    html = render(pack, item, media=media, media_url="/media/5", prior=prior)
    tags = parsed(html).tags
    widget = next(attrs for _tag, attrs in tags if attrs.get("data-widget") == "bounding_boxes")
    assert (widget["data-width"], widget["data-height"]) == ("320", "200")
    assert json.loads(widget["data-labels"]) == ["cell", "debris"]
    svg = next(attrs for tag, attrs in tags if tag == "svg")
    assert svg["viewbox"] == "0 0 320 200"
    hidden = next(attrs for tag, attrs in tags if attrs.get("name") == "boxes")
    assert json.loads(hidden["value"]) == prior["boxes"]
    assert "Drawing boxes needs JavaScript" in html
    assert canonical(app, pack, item, html, media=media) == prior
    # No prior: an empty list, which is a valid "nothing to box" answer.
    empty = render(pack, item, media=media, media_url="/media/5")
    assert canonical(app, pack, item, empty, media=media) == {"boxes": []}


@pytest.fixture
def show(app):
    from flask import render_template_string

    def go(pack, item, answer, media_url=None, media=None):
        with app.test_request_context():
            return render_template_string(
                '{% from "labeling/show_answer.html" import show_answer %}'
                "{{ show_answer(pack, item, answer, media_url, media) }}",
                pack=pack, item=item, answer=answer, media_url=media_url, media=media)

    return go


def test_show_answer_labels_as_chips(show):
    pack = pack_of("text_classification", label_options=["a<b", "c"], multi_label=True)
    html = show(pack, Item(payload={"text": "x"}), {"labels": ["a<b", "c"]})
    assert re.findall(r'<li class="chip">([^<]*)</li>', html) == ["a&lt;b", "c"]


def test_show_answer_cleaning_as_a_word_diff(show):
    pack = pack_of("text_cleaning")
    item = Item(payload={"text": "The cat  sat on teh mat."})
    html = show(pack, item, {"text": "The cat sat on the mat."})
    assert "<del>teh</del><ins>the</ins>" in html
    assert html.count("<ins>") == 3  # two runs in the diff (a space and a word) and the legend
    same = show(pack, item, {"text": "The cat  sat on teh mat."})
    assert "No changes to the original." in same and "<ins>" not in same


def test_show_answer_transcript_and_boxes(show):
    spoken = show(pack_of("audio_transcription"), Item(payload={}), {"text": "Hello <there>"})
    assert '<p class="answer__text">Hello &lt;there&gt;</p>' in spoken
    pack = pack_of("bounding_boxes", label_options=["cell", "debris"])
    item = Item(payload={"alt": "Cells"})
    answer = {"boxes": [{"x": 1, "y": 2, "w": 3, "h": 4, "label": "debris"}]}
    html = show(pack, item, answer, media_url="/media/5", media=Media(width=64, height=48))
    assert 'viewBox="0 0 64 48"' in html
    assert re.search(r'<rect class="answer__box answer__box--c1"\s+x="1" y="2" width="3" height="4"', html)
    assert "style=" not in html
    # Without the media row the overlay waits for the script to read the picture's size.
    unsized = show(pack, item, answer, media_url="/media/5")
    assert "data-fit-image hidden" in unsized
    nothing = show(pack, item, {"boxes": []}, media_url="/media/5")
    assert "No boxes" in nothing and "<rect" not in nothing
