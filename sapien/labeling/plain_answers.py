"""Answers written as plain values: the gold column of an items file, and a moderator's override.

One definition per task type says how an answer is written as a plain value, and gives the rows of its
example items file; the parser, the upload page and the downloadable examples all read these, so what
the page documents is what the import accepts. JSON in the canonical shape (`models.ANSWER_SHAPES`) is
still accepted everywhere a plain value is.

- classification: a label, or labels separated by `|` for a multi-label pack: `positive`, `cat|dog`
- text cleaning, transcription: the text itself
- bounding boxes: `label:x,y,w,h` boxes in image pixels, separated by `|`: `cat:10,20,40,30|dog:60,5,20,20`
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from sapien.csv_export import csv_lines
from sapien.labeling.errors import InvalidAnswer
from sapien.labeling.models import TASK_TYPES
from sapien.labeling.packs import CLASSIFICATION_TYPES, TEXT_TYPES

SEPARATOR = "|"
FREE_TEXT_TYPES = ("text_cleaning", "audio_transcription")


@dataclass(frozen=True)
class PlainFormat:
    how: object  # a lazy string: how to write one answer
    example: str  # one answer written that way
    labels: tuple[str, ...]  # the label set the example file uses (empty for free text)
    rows: tuple[dict, ...]  # the example file's rows


_TEXT_ROWS = {
    "text_classification": (
        {"external_id": "review-001", "text": "The battery lasts all day and charges fast."},
        {"external_id": "review-002", "text": "It broke after a week.", "gold": "negative", "explanation": "Breaking is a complaint."},
        {"external_id": "review-003", "text": "Does what it says; nothing more.", "gold": "neutral", "explanation": "Neither praise nor complaint.", "exam": "yes"},
    ),
    "text_cleaning": (
        {"external_id": "note-001", "text": "Teh meeting is moved to thursday."},
        {"external_id": "note-002", "text": "Pleese send the the report.", "gold": "Please send the report.", "explanation": "Fix the spelling and the doubled word."},
    ),
}
_MEDIA_ROWS = {
    "image_classification": (
        {"external_id": "photo-001", "media": "photo-001.jpg", "alt": "A pet on a sofa"},
        {"external_id": "photo-002", "media": "photo-002.jpg", "alt": "A pet in a garden", "gold": "dog", "explanation": "Floppy ears and a leash."},
    ),
    "bounding_boxes": (
        {"external_id": "scene-001", "media": "scene-001.png", "alt": "Two pets on a lawn"},
        {"external_id": "scene-002", "media": "scene-002.png", "alt": "A cat and a dog", "gold": "cat:10,20,40,30|dog:60,5,20,20",
         "explanation": "One box per animal, tight around it."},
    ),
    "audio_transcription": (
        {"external_id": "clip-001", "media": "clip-001.wav", "alt": "A short spoken sentence"},
        {"external_id": "clip-002", "media": "clip-002.wav", "alt": "A spoken number", "gold": "seven hundred and two", "explanation": "Numbers are written in words."},
    ),
}

PLAIN_FORMATS: dict[str, PlainFormat] = {
    "text_classification": PlainFormat(
        _l("the label, or labels separated by | when the pack allows several"), "negative", ("positive", "negative", "neutral"), _TEXT_ROWS["text_classification"]
    ),
    "image_classification": PlainFormat(
        _l("the label, or labels separated by | when the pack allows several"), "dog", ("cat", "dog"), _MEDIA_ROWS["image_classification"]
    ),
    "text_cleaning": PlainFormat(_l("the corrected text"), "Please send the report.", (), _TEXT_ROWS["text_cleaning"]),
    "audio_transcription": PlainFormat(_l("the transcript"), "seven hundred and two", (), _MEDIA_ROWS["audio_transcription"]),
    "bounding_boxes": PlainFormat(
        _l("one label:x,y,w,h per box (image pixels from the top left), boxes separated by |"),
        "cat:10,20,40,30|dog:60,5,20,20",
        ("cat", "dog"),
        _MEDIA_ROWS["bounding_boxes"],
    ),
}
assert set(PLAIN_FORMATS) == set(TASK_TYPES)


def example_columns(task_type: str) -> tuple[str, ...]:
    return ("external_id", "text" if task_type in TEXT_TYPES else "media", *(() if task_type in TEXT_TYPES else ("alt",)), "gold", "explanation", "exam")


def example_csv(task_type: str) -> Iterator[str]:
    """The example items file of a task type, as CSV lines."""
    columns = example_columns(task_type)
    return csv_lines(columns, ([row.get(column, "") for column in columns] for row in PLAIN_FORMATS[task_type].rows))


def parse_plain_answer(task_type: str, raw: str) -> dict:
    """A plain value (or canonical JSON) as an answer dict, not yet validated against the pack."""
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        if task_type not in FREE_TEXT_TYPES:  # free text may well start with "{"
            raise InvalidAnswer(_l("It starts with “{” but is not valid JSON."))
    if task_type in CLASSIFICATION_TYPES:
        return {"labels": [part.strip() for part in raw.split(SEPARATOR) if part.strip()]}
    if task_type == "bounding_boxes":
        return {"boxes": [_parse_box(part) for part in raw.split(SEPARATOR) if part.strip()]}
    return {"text": raw}


def _parse_box(text: str) -> dict:
    label, colon, numbers = text.strip().rpartition(":")
    parts = numbers.split(",")
    if not colon or not label.strip() or len(parts) != 4:
        raise InvalidAnswer(_l("Write each box as label:x,y,w,h (for example cat:10,20,40,30); “%(box)s” is not.", box=text.strip()[:60]))
    try:
        x, y, w, h = (int(part.strip()) for part in parts)
    except ValueError:
        raise InvalidAnswer(_l("A box's x, y, w and h are whole numbers of pixels; “%(box)s” has others.", box=text.strip()[:60])) from None
    return {"label": label.strip(), "x": x, "y": y, "w": w, "h": h}


def plain_answer(task_type: str, answer: dict | None) -> str:
    """An answer written as a plain value (the inverse of `parse_plain_answer`), to show or prefill."""
    if not answer:
        return ""
    if "labels" in answer:
        return SEPARATOR.join(answer["labels"])
    if "boxes" in answer:
        return SEPARATOR.join(f"{box['label']}:{box['x']},{box['y']},{box['w']},{box['h']}" for box in answer["boxes"])
    return str(answer.get("text", ""))
