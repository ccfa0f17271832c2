"""Answers: parsing a work form, validating and canonicalising an answer, text diffs."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence

from flask_babel import lazy_gettext as _l

from sapien.extensions import db
from sapien.labeling.errors import InvalidAnswer
from sapien.labeling.models import (
    Item,
    Media,
    TaskPack,
)
from sapien.labeling.packs import CLASSIFICATION_TYPES, MAX_BOXES, MAX_CLEANED_TEXT, MAX_TRANSCRIPT


def _first(form: Mapping, key: str) -> str | None:
    if hasattr(form, "getlist"):
        values = form.getlist(key)
    else:
        values = form.get(key)
        if values is None:
            return None
        if isinstance(values, str):
            values = [values]
    return values[0] if values else None


def _all(form: Mapping, key: str) -> list[str]:
    if hasattr(form, "getlist"):
        return list(form.getlist(key))
    values = form.get(key) or []
    return [values] if isinstance(values, str) else list(values)


def parse_answer_form(pack: TaskPack, item: Item, form: Mapping) -> dict:
    """Turn the widget's form fields into the canonical answer shape (not yet validated)."""
    if pack.task_type in CLASSIFICATION_TYPES:
        return {"labels": _all(form, "label")}
    if pack.task_type in ("text_cleaning", "audio_transcription"):
        return {"text": _first(form, "text") or ""}
    raw = _first(form, "boxes")
    if raw is None or not raw.strip():
        return {"boxes": []}
    try:
        boxes = json.loads(raw)
    except ValueError:
        raise InvalidAnswer(_l("The boxes could not be read. Draw them again and resubmit.")) from None
    return {"boxes": boxes}


def _media_of(item: Item, media: Media | None) -> Media | None:
    if media is not None or item.media_id is None:
        return media
    return db.session.get(Media, item.media_id)


def validate_answer(pack: TaskPack, item: Item, answer: dict, *, media: Media | None = None) -> dict:
    """Check an answer against the pack's task type; returns it in canonical form."""
    if not isinstance(answer, dict):
        raise InvalidAnswer(_l("That answer is not in the shape this task needs."))
    task_type = pack.task_type
    if task_type in CLASSIFICATION_TYPES:
        labels = answer.get("labels")
        if set(answer) != {"labels"} or not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise InvalidAnswer(_l("That answer is not in the shape this task needs: choose labels."))
        chosen = sorted({label.strip() for label in labels if label.strip()})
        if not chosen:
            raise InvalidAnswer(_l("Choose a label."))
        outside = [label for label in chosen if label not in pack.label_options]
        if outside:
            raise InvalidAnswer(_l("“%(label)s” is not one of this pack's labels.", label=outside[0][:64]))
        if len(chosen) > 1 and not pack.multi_label:
            raise InvalidAnswer(_l("Choose exactly one label."))
        return {"labels": chosen}
    if task_type in ("text_cleaning", "audio_transcription"):
        text = answer.get("text")
        if set(answer) != {"text"} or not isinstance(text, str):
            raise InvalidAnswer(_l("That answer is not in the shape this task needs: type the text."))
        text = text.replace("\r\n", "\n").strip()
        if task_type == "audio_transcription":
            if not text:
                raise InvalidAnswer(_l("The transcript is empty. Type what you hear."))
            if len(text) > MAX_TRANSCRIPT:
                raise InvalidAnswer(_l("The transcript is too long (at most %(max)s characters).", max=f"{MAX_TRANSCRIPT:,}"))
        else:
            if not text:
                raise InvalidAnswer(_l("The edited passage is empty. Keep the text and fix what is wrong."))
            if len(text) > MAX_CLEANED_TEXT:
                raise InvalidAnswer(_l("The edited passage is too long (at most %(max)s characters).", max=f"{MAX_CLEANED_TEXT:,}"))
        return {"text": text}
    return {"boxes": _validate_boxes(pack, item, answer, media)}


def _validate_boxes(pack: TaskPack, item: Item, answer: dict, media: Media | None) -> list[dict]:
    boxes = answer.get("boxes")
    if set(answer) != {"boxes"} or not isinstance(boxes, list):
        raise InvalidAnswer(_l("That answer is not in the shape this task needs: draw boxes."))
    if len(boxes) > MAX_BOXES:
        raise InvalidAnswer(_l("Too many boxes: at most %(max)s.", max=MAX_BOXES))
    media = _media_of(item, media)
    width = media.width if media is not None else None
    height = media.height if media is not None else None
    only_label = pack.label_options[0] if len(pack.label_options) == 1 else None
    clean = []
    for number, box in enumerate(boxes, start=1):
        if not isinstance(box, dict):
            raise InvalidAnswer(_l("Box %(n)s is not a box.", n=number))
        values = {}
        for key in ("x", "y", "w", "h"):
            value = box.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
                raise InvalidAnswer(_l("Box %(n)s has no valid %(key)s position.", n=number, key=key))
            values[key] = int(round(value))
        if values["w"] <= 0 or values["h"] <= 0:
            raise InvalidAnswer(_l("Box %(n)s has no size: its width and height must be above zero.", n=number))
        if values["x"] < 0 or values["y"] < 0 or (
            width is not None and height is not None and (values["x"] + values["w"] > width or values["y"] + values["h"] > height)
        ):
            raise InvalidAnswer(_l("Box %(n)s goes outside the image.", n=number))
        label = box.get("label")
        if label in (None, "") and only_label is not None:
            label = only_label
        if not isinstance(label, str) or label not in pack.label_options:
            raise InvalidAnswer(_l("Box %(n)s needs one of this pack's labels.", n=number))
        clean.append({**values, "label": label})
    return clean


def text_diff(original: str, edited: str) -> list[tuple[str, str]]:
    """A word-level diff: ("equal" | "insert" | "delete", text) runs, whitespace kept with its words."""
    before = re.findall(r"\s+|[^\s]+", original or "")
    after = re.findall(r"\s+|[^\s]+", edited or "")
    runs: list[tuple[str, str]] = []

    def add(op: str, tokens: list[str]) -> None:
        text = "".join(tokens)
        if not text:
            return
        if runs and runs[-1][0] == op:
            runs[-1] = (op, runs[-1][1] + text)
        else:
            runs.append((op, text))

    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", before[a1:a2])
        else:
            add("delete", before[a1:a2])
            add("insert", after[b1:b2])
    return runs


# --- matching an answer against a known one (gold checks, exams, agreement) --------------------
# Text answers match when their normalised word sequences are this similar (1 − word edit distance / length).
TEXT_MATCH_SIMILARITY = {"text_cleaning": 0.95, "audio_transcription": 0.85}
BOX_MATCH_IOU = 0.5


_PUNCTUATION = re.compile(r"[^\w\s']+", re.UNICODE)


def _words(text: str, *, loose: bool) -> list[str]:
    text = (text or "").strip()
    if loose:
        text = _PUNCTUATION.sub(" ", text.casefold())
    return text.split()


def _edit_distance(a: Sequence, b: Sequence) -> int:
    # A shared beginning and end never change the distance: a cleaned passage is mostly its original, so
    # trimming them leaves a small table instead of one of the passage's length squared.
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end = 0
    while end < len(a) - start and end < len(b) - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, left in enumerate(a, 1):
        current = [i]
        for j, right in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (left != right)))
        previous = current
    return previous[-1]


def text_similarity(expected: str, answer: str, *, loose: bool = False) -> float:
    """1 − word-level edit distance / the longer length; `loose` ignores case and punctuation."""
    left, right = _words(expected, loose=loose), _words(answer, loose=loose)
    longest = max(len(left), len(right))
    if longest == 0:
        return 1.0
    return 1.0 - _edit_distance(left, right) / longest


def box_iou(a: dict, b: dict) -> float:
    ax2, ay2, bx2, by2 = a["x"] + a["w"], a["y"] + a["h"], b["x"] + b["w"], b["y"] + b["h"]
    inter_w = min(ax2, bx2) - max(a["x"], b["x"])
    inter_h = min(ay2, by2) - max(a["y"], b["y"])
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    return inter / (a["w"] * a["h"] + b["w"] * b["h"] - inter)


def match_boxes(expected: list[dict], answer: list[dict], threshold: float = BOX_MATCH_IOU) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of same-label boxes by IoU (best pairs first), pairs at or above `threshold`."""
    pairs = []
    for i, left in enumerate(expected):
        for j, right in enumerate(answer):
            if left.get("label") != right.get("label"):
                continue
            iou = box_iou(left, right)
            if iou >= threshold:
                pairs.append((iou, i, j))
    pairs.sort(reverse=True)
    used_left, used_right, matched = set(), set(), []
    for _, i, j in pairs:
        if i not in used_left and j not in used_right:
            used_left.add(i)
            used_right.add(j)
            matched.append((i, j))
    return matched


def answers_match(pack, expected: dict, answer: dict) -> bool:
    """Is `answer` the same answer as `expected` for this pack's task type?

    Classification: the same label set. Text cleaning: word sequences ≥ 95 % alike (case and punctuation
    count: they are what cleaning fixes). Transcription: ≥ 85 % alike ignoring case and punctuation (a
    word error rate of at most 15 %). Boxes: the same number of boxes, each matched one-to-one to a box
    of the same label with IoU ≥ 0.5.
    """
    if expected is None or answer is None:
        return False
    task_type = pack.task_type
    if task_type in CLASSIFICATION_TYPES:
        return sorted(set(expected.get("labels") or [])) == sorted(set(answer.get("labels") or []))
    if task_type == "text_cleaning":
        return text_similarity(expected.get("text", ""), answer.get("text", "")) >= TEXT_MATCH_SIMILARITY[task_type]
    if task_type == "audio_transcription":
        return text_similarity(expected.get("text", ""), answer.get("text", ""), loose=True) >= TEXT_MATCH_SIMILARITY[task_type]
    if task_type == "bounding_boxes":
        left, right = expected.get("boxes") or [], answer.get("boxes") or []
        if len(left) != len(right):
            return False
        return len(match_boxes(left, right)) == len(left)
    return expected == answer


# A boxes pack's worked example usually answers with a count: "2", "2 boxes", "1 box", "no boxes".
EXAMPLE_BOX_COUNT = re.compile(r"^\s*(?:(\d+)(?:\s+box(?:es)?)?|no\s+box(?:es)?)\s*$", re.IGNORECASE)


def example_box_count(answer: str) -> int | None:
    """The number of boxes an example's answer gives, if that is all it says, so the page can say it in the
    member's language (ngettext); None for any other answer, shown as written."""
    match = EXAMPLE_BOX_COUNT.match(answer or "")
    return None if match is None else int(match.group(1) or 0)
