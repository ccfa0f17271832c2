"""Answer validation per task type: every bad shape gets a clear message, good answers come back canonical."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from sapien.labeling import answers, packs
from sapien.labeling import errors as labeling_errors

from .conftest import make_media_pack, make_pack


@pytest.fixture
def text_pack(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, label_options=["pos", "neg", "mixed"])
    return pack, packs.pack_items(pack.id)[0]


def invalid(pack, item, answer) -> str:
    with pytest.raises(labeling_errors.InvalidAnswer) as caught:
        answers.validate_answer(pack, item, answer)
    return str(caught.value)


def test_classification_answers(text_pack):
    pack, item = text_pack
    assert answers.validate_answer(pack, item, {"labels": ["pos", "pos "]}) == {"labels": ["pos"]}
    assert "shape" in invalid(pack, item, {"text": "pos"})
    assert "shape" in invalid(pack, item, {"labels": "pos"})
    assert "shape" in invalid(pack, item, ["pos"])
    assert invalid(pack, item, {"labels": ["great"]}) == "“great” is not one of this pack's labels."
    assert invalid(pack, item, {"labels": []}) == "Choose a label."
    assert invalid(pack, item, {"labels": ["pos", "neg"]}) == "Choose exactly one label."


def test_multi_label_answers_are_sorted_and_unique(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, label_options=["b", "a", "c"], multi_label=True)
    item = packs.pack_items(pack.id)[0]
    assert answers.validate_answer(pack, item, {"labels": ["c", "a", "c"]}) == {"labels": ["a", "c"]}
    form = MultiDict([("label", "c"), ("label", "b")])
    assert answers.parse_answer_form(pack, item, form) == {"labels": ["c", "b"]}


def test_transcripts(ctx, tmp_path):
    pack, report = make_media_pack(tmp_path, "audio_transcription", labels=())
    assert report.imported == 1
    item = packs.pack_items(pack.id)[0]
    assert answers.validate_answer(pack, item, {"text": "  hello world \r\n"}) == {"text": "hello world"}
    assert invalid(pack, item, {"text": "   "}) == "The transcript is empty. Type what you hear."
    assert "too long" in invalid(pack, item, {"text": "x" * 5001})
    assert answers.validate_answer(pack, item, {"text": "x" * 5000})["text"] == "x" * 5000
    assert "shape" in invalid(pack, item, {"labels": ["x"]})


def test_text_cleaning(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, task_type="text_cleaning", label_options=[])
    item = packs.pack_items(pack.id)[0]
    assert answers.validate_answer(pack, item, {"text": "Fixed text."}) == {"text": "Fixed text."}
    assert "empty" in invalid(pack, item, {"text": ""})
    assert "too long" in invalid(pack, item, {"text": "y" * 20001})


def test_boxes(ctx, tmp_path):
    pack, _report = make_media_pack(tmp_path, "bounding_boxes", labels=("cell",))  # the image is 64 × 48
    item = packs.pack_items(pack.id)[0]
    ok = answers.validate_answer(pack, item, {"boxes": [{"x": 1, "y": 2, "w": 10.4, "h": 5}]})
    assert ok == {"boxes": [{"x": 1, "y": 2, "w": 10, "h": 5, "label": "cell"}]}  # the only label is filled in
    assert answers.validate_answer(pack, item, {"boxes": []}) == {"boxes": []}
    assert invalid(pack, item, {"boxes": [{"x": 60, "y": 0, "w": 10, "h": 5}]}) == "Box 1 goes outside the image."
    assert invalid(pack, item, {"boxes": [{"x": 0, "y": 40, "w": 10, "h": 10}]}) == "Box 1 goes outside the image."
    assert invalid(pack, item, {"boxes": [{"x": -1, "y": 0, "w": 10, "h": 5}]}) == "Box 1 goes outside the image."
    assert "no size" in invalid(pack, item, {"boxes": [{"x": 5, "y": 5, "w": -3, "h": 5}]})
    assert "no size" in invalid(pack, item, {"boxes": [{"x": 5, "y": 5, "w": 3, "h": 0}]})
    assert "position" in invalid(pack, item, {"boxes": [{"x": "a", "y": 5, "w": 3, "h": 3}]})
    assert "labels" in invalid(pack, item, {"boxes": [{"x": 1, "y": 1, "w": 3, "h": 3, "label": "dog"}]})
    assert invalid(pack, item, {"boxes": [{"x": 0, "y": 0, "w": 1, "h": 1}] * 101}) == "Too many boxes: at most 100."
    assert "shape" in invalid(pack, item, {"boxes": {"x": 1}})
    with pytest.raises(labeling_errors.InvalidAnswer, match="could not be read"):
        answers.parse_answer_form(pack, item, MultiDict([("boxes", "[{nope")]))


def test_text_diff_is_word_level():
    runs = answers.text_diff("the quick brown fox", "the quick red fox jumps")
    assert runs == [("equal", "the quick "), ("delete", "brown"), ("insert", "red"), ("equal", " fox"), ("insert", " jumps")]
    assert answers.text_diff("same", "same") == [("equal", "same")]
