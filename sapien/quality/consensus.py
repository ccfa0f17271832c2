"""Consensus for answers that are not one of a few classes (free text, boxes), and each answer's
agreement with a consensus. No database here: the online decision (`quality.online`) and the batch
aggregation (`quality.batch`) both call `consensus`, so an item gets the same label either way.

The method is the skill-weighted medoid: of the answers given, the one with the smallest weighted sum of
distances to all the others. Braylan & Lease ("Modeling and Aggregation of Complex Annotations via
Annotation Distances", The Web Conference 2020) aggregate complex annotations (sequences, boxes) this way:
only a distance between two annotations is needed, and the result is always an answer a member actually
gave (a ROVER alignment can stitch together a sentence nobody wrote). The medoid itself is Kaufman &
Rousseeuw's (PAM, 1987). Distances, per task type, are 1 − `agreement_with_consensus`:

- text: the word-level Levenshtein distance over the longer length, with the same normalisation
  `labeling.answers.answers_match` uses (case and punctuation ignored for transcripts, kept for cleaning);
- boxes: 1 − the mean IoU of the boxes matched one-to-one (`labeling.answers.match_boxes`), over the
  larger number of boxes (a missing or extra box counts 0);
- classes: 0 when the label sets are the same, 1 otherwise.

Each answer weighs its member's skill. The consensus's confidence is the one-coin posterior that the
answers agreeing with it (`answers_match`) hold the right answer. A consensus *verifies* an item only when
at least MIN_AGREEING_VOICES different people stand behind it — the authors of agreeing answers, and the
reviewers who accepted one of them: a single answer alone is never verified without review.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sapien.labeling.answers import answers_match, box_iou, match_boxes, text_similarity
from sapien.labeling.packs import CLASSIFICATION_TYPES

MIN_AGREEING_VOICES = 2
# Any overlap pairs two boxes when agreement is measured (an IoU of 0.3 is partial agreement, not none).
_ANY_OVERLAP = 1e-9


def box_set_agreement(expected: list[dict], answer: list[dict]) -> float:
    """Mean IoU of same-label boxes matched one-to-one, over the larger number of boxes (both empty: 1)."""
    larger = max(len(expected), len(answer))
    if larger == 0:
        return 1.0
    matched = match_boxes(expected, answer, threshold=_ANY_OVERLAP)
    return sum(box_iou(expected[i], answer[j]) for i, j in matched) / larger


def agreement_with_consensus(pack, answer: dict | None, consensus: dict | None) -> float:
    """How far `answer` agrees with `consensus`, in [0, 1]: 1 − normalised word edit distance for texts,
    the mean matched IoU for boxes, 1 or 0 for classes."""
    if answer is None or consensus is None:
        return 0.0
    task_type = pack.task_type
    if task_type in CLASSIFICATION_TYPES:
        return 1.0 if answers_match(pack, consensus, answer) else 0.0
    if task_type in ("audio_transcription", "text_cleaning"):
        loose = task_type == "audio_transcription"
        return max(0.0, text_similarity(consensus.get("text", ""), answer.get("text", ""), loose=loose))
    if task_type == "bounding_boxes":
        return box_set_agreement(consensus.get("boxes") or [], answer.get("boxes") or [])
    return 1.0 if consensus == answer else 0.0


def medoid_index(pack, answers: Sequence[dict], weights: Sequence[float]) -> int:
    """The answer with the smallest weighted sum of distances to the others (ties: the heavier, then the
    earlier answer). Each pair's distance is computed once."""
    n = len(answers)
    if n == 0:
        raise ValueError("no answers")
    distance = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            distance[i][j] = distance[j][i] = 1.0 - agreement_with_consensus(pack, answers[j], answers[i])
    costs = [sum(weights[j] * distance[i][j] for j in range(n)) for i in range(n)]
    return min(range(n), key=lambda i: (round(costs[i], 12), -weights[i], i))


def one_coin_posteriors(skills: Sequence[float], groups: Sequence[Sequence[int]], k: int) -> list[float]:
    """P(group g holds the right answer) under the one-coin model: answer i is right with probability
    skills[i] (clamped to [1/k, 0.99]) and otherwise one of the k − 1 others; the hypotheses are the
    groups of matching answers plus the k − len(groups) answers nobody gave."""
    right_logs, wrong_logs = [], []
    for skill in skills:
        q = min(0.99, max(1.0 / k, skill))
        right_logs.append(math.log(q))
        wrong_logs.append(math.log((1 - q) / (k - 1)))
    all_wrong = sum(wrong_logs)
    logs = []
    for members in groups:
        inside = set(members)
        logs.append(sum(right_logs[i] if i in inside else wrong_logs[i] for i in range(len(skills))))
    unseen = max(0, k - len(groups))
    peak = max([*logs, all_wrong])
    total = sum(math.exp(value - peak) for value in logs) + unseen * math.exp(all_wrong - peak)
    return [math.exp(value - peak) / total for value in logs]


def group_matching(pack, answers: Sequence[dict], first: int | None = None) -> list[list[int]]:
    """Answers grouped by `answers_match` with each group's first answer (starting with `first`'s group)."""
    order = list(range(len(answers)))
    if first is not None:
        order.remove(first)
        order.insert(0, first)
    groups: list[list[int]] = []
    for index in order:
        for group in groups:
            if answers_match(pack, answers[group[0]], answers[index]):
                group.append(index)
                break
        else:
            groups.append([index])
    return groups


@dataclass
class Consensus:
    index: int  # which answer is the consensus
    answer: dict
    confidence: float  # the one-coin posterior of the answers that match it
    supporting: list[int]  # indices of the answers that match it (the consensus among them)
    agreement: list[float]  # every answer's agreement with the consensus, in input order


def consensus(pack, answers: Sequence[dict], skills: Sequence[float]) -> Consensus:
    """The skill-weighted medoid of one item's answers (see the module docstring)."""
    best = medoid_index(pack, answers, skills)
    groups = group_matching(pack, answers, first=best)
    # A text or a drawing is right or wrong: K = 2, as the one-coin vote has always counted them.
    posteriors = one_coin_posteriors(skills, groups, 2)
    return Consensus(
        index=best,
        answer=answers[best],
        confidence=posteriors[0],
        supporting=sorted(groups[0]),
        agreement=[agreement_with_consensus(pack, answer, answers[best]) for answer in answers],
    )


def verifies(author_ids: Iterable[int], vouching_reviewer_ids: Iterable[int] = ()) -> bool:
    """Do at least MIN_AGREEING_VOICES different people stand behind an answer: the authors of the
    answers that agree with it, and reviewers who accepted one of those answers?"""
    return len(set(author_ids) | set(vouching_reviewer_ids)) >= MIN_AGREEING_VOICES
