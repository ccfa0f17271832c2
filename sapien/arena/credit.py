"""Partial credit for an accuracy duel answer against a gold answer, per task type (a number from 0 to 1).

Classification: 1 for the right label (multi-label: the overlap of the two label sets, Jaccard). Boxes:
each gold box matched to the drawn box of its label that overlaps it most, credit = mean intersection over
union (a missing or extra box counts 0). Transcripts and cleaned text: 1 − character error rate, at least 0.
"""

from __future__ import annotations


def _labels(answer: dict | None) -> set[str]:
    return set((answer or {}).get("labels") or [])


def _iou(a: dict, b: dict) -> float:
    ax2, ay2, bx2, by2 = a["x"] + a["w"], a["y"] + a["h"], b["x"] + b["w"], b["y"] + b["h"]
    width, height = min(ax2, bx2) - max(a["x"], b["x"]), min(ay2, by2) - max(a["y"], b["y"])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union else 0.0


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def credit(task_type: str, answer: dict | None, gold: dict | None) -> float:
    if not gold:
        return 0.0
    if task_type in ("text_classification", "image_classification"):
        given, truth = _labels(answer), _labels(gold)
        return len(given & truth) / len(given | truth) if given | truth else 0.0
    if task_type == "bounding_boxes":
        drawn, truth = list((answer or {}).get("boxes") or []), list(gold.get("boxes") or [])
        if not truth:
            return 1.0 if not drawn else 0.0
        total = sum(max((_iou(box, other) for other in drawn if other.get("label") == box.get("label")), default=0.0) for box in truth)
        return total / max(len(truth), len(drawn))
    if task_type in ("audio_transcription", "text_cleaning"):
        said, truth = " ".join(str((answer or {}).get("text", "")).split()), " ".join(str(gold.get("text", "")).split())
        if not truth:
            return 1.0 if not said else 0.0
        return max(0.0, 1 - _edit_distance(said.lower(), truth.lower()) / len(truth))
    return 0.0
