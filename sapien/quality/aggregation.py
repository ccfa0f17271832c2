"""Aggregation arithmetic: answers in, one label per item with a confidence out. No database here.

Classification: Dawid-Skene (our vectorised EM, see `dawid_skene`), or crowd-kit's Wawa, majority vote
weighted by member skill, or crowd-kit's own DawidSkene ("crowdkit_dawid_skene", kept for comparison). Transcripts and cleaned text use crowd-kit's ROVER. Boxes use
IoU clustering (crowd-kit 1.4 has no box aggregator): every member's boxes are matched greedily to
clusters (same label, IoU ≥ 0.5 with the cluster's current box, at most one box per member per
cluster); a cluster supported by at least half of the item's answer weight becomes a box whose edges are
the weighted median of its members' edges.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

BOX_CLUSTER_IOU = 0.5
CLASSIFICATION_METHODS = ("dawid_skene", "wawa", "majority_vote", "crowdkit_dawid_skene")


@dataclass(frozen=True)
class Vote:
    """One answer as aggregation sees it. `value` is a hashable key for classification (the sorted labels
    joined by "|"), the text for text types, or a tuple of boxes."""

    item_id: int
    user_id: int
    submission_id: int
    value: object


@dataclass
class Aggregate:
    value: object
    confidence: float
    submission_ids: list[int]


def label_key(labels: Iterable[str]) -> str:
    return "|".join(sorted(set(labels)))


def labels_of(key: str) -> list[str]:
    return [label for label in key.split("|") if label] if key else []


# --- online classification posterior -------------------------------------------------------------

def prior_confusion(k: int, accuracy: float, strength: float) -> np.ndarray:
    """Dirichlet pseudo-counts for a member's confusion matrix: `accuracy` on the diagonal."""
    off = strength * (1 - accuracy) / max(1, k - 1)
    matrix = np.full((k, k), off)
    np.fill_diagonal(matrix, strength * accuracy)
    return matrix


def class_posterior(k: int, votes: Sequence[tuple[int, np.ndarray]], prior: np.ndarray | None = None) -> np.ndarray:
    """Posterior over the true class given votes (given-class index, the member's confusion counts
    [true, given]) — the Dawid-Skene E-step for one item."""
    log_post = np.log(prior) if prior is not None else np.zeros(k)
    for given, counts in votes:
        rows = counts / counts.sum(axis=1, keepdims=True)
        log_post = log_post + np.log(np.clip(rows[:, given], 1e-12, None))
    log_post -= log_post.max()
    post = np.exp(log_post)
    return post / post.sum()


# --- batch classification -----------------------------------------------------------------------

def _frame(votes: Sequence[Vote]):
    import pandas as pd  # pandas loads slowly: only the crowd-kit methods pay for it

    return pd.DataFrame(
        {
            "task": [v.item_id for v in votes],
            "worker": [v.user_id for v in votes],
            "label": [v.value for v in votes],
        }
    )


def gold_confusion_counts(gold_votes: Sequence[tuple[int, object, object]], classes: Sequence):
    """crowd-kit's `initial_error` from gold answers: index (worker, given label), a column per true label,
    counts of how often the worker gave that label when the truth was the column."""
    import pandas as pd  # pandas loads slowly: only the crowd-kit methods pay for it

    counts: dict[tuple[int, object], dict[object, float]] = defaultdict(lambda: dict.fromkeys(classes, 0.0))
    for user_id, given, truth in gold_votes:
        if given in classes and truth in classes:
            counts[(user_id, given)][truth] += 1.0
    if not counts:
        return pd.DataFrame()
    frame = pd.DataFrame.from_dict(counts, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["worker", "label"])
    return frame[list(classes)]


def aggregate_classification(
    votes: Sequence[Vote],
    *,
    method: str = "dawid_skene",
    gold_votes: Sequence[tuple[int, object, object]] = (),
    skills: dict[int, float] | None = None,
    n_iter: int = 100,
) -> dict[int, Aggregate]:
    """One label per item. `gold_votes` are (user_id, given, true) from gold items: they initialise
    Dawid-Skene's confusion matrices (crowd-kit's "addition" strategy). `skills` weigh majority vote."""
    if method not in CLASSIFICATION_METHODS:
        raise ValueError(f"unknown classification method {method!r}")
    if not votes:
        return {}
    if method == "dawid_skene":
        return dawid_skene(votes, gold_votes=gold_votes, n_iter=n_iter)
    # crowd-kit (and pandas) load slowly: only the methods that use them pay for the import.
    import pandas as pd
    from crowdkit.aggregation import DawidSkene, MajorityVote

    frame = _frame(votes)
    if method == "crowdkit_dawid_skene":
        classes = sorted(set(frame["label"]) | {truth for _, _, truth in gold_votes})
        initial = gold_confusion_counts(gold_votes, classes)
        if not initial.empty:
            workers = frame["worker"].unique()
            index = pd.MultiIndex.from_product([workers, sorted(set(frame["label"]))], names=["worker", "label"])
            initial = initial.reindex(index, fill_value=0.0)
            initial = initial[[c for c in initial.columns if c in set(frame["label"])]]
            initial.columns.name = None
            model = DawidSkene(n_iter=n_iter, initial_error_strategy="addition")
            probas = model.fit_predict_proba(frame, initial_error=initial)
        else:
            probas = DawidSkene(n_iter=n_iter).fit_predict_proba(frame)
    elif method == "wawa":
        # Wawa: majority vote, then each member weighed by their agreement with it, then vote again.
        # (Built from crowd-kit's pieces: its own Wawa class trips over newer scikit-learn.)
        from crowdkit.aggregation.utils import get_accuracy  # crowd-kit loads slowly (see above)

        first = MajorityVote().fit_predict(frame)
        accuracy = get_accuracy(frame, first, by="worker")
        probas = MajorityVote().fit_predict_proba(frame, skills=pd.Series(accuracy, dtype=float).clip(lower=1e-3))
    else:
        weights = pd.Series({user_id: skills.get(user_id, 1.0) if skills else 1.0 for user_id in frame["worker"].unique()})
        probas = MajorityVote().fit_predict_proba(frame, skills=weights.clip(lower=1e-3))
    by_item: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_item[vote.item_id].append(vote)
    values = probas.to_numpy()
    columns = list(probas.columns)
    best = values.argmax(axis=1)
    result = {}
    for row, item_id in enumerate(probas.index):
        choice = columns[best[row]]
        result[int(item_id)] = Aggregate(
            value=choice,
            confidence=float(values[row, best[row]]),
            submission_ids=[v.submission_id for v in by_item[int(item_id)] if v.value == choice],
        )
    return result


def dawid_skene(
    votes: Sequence[Vote], *, gold_votes: Sequence[tuple[int, object, object]] = (), n_iter: int = 100, smoothing: float = 0.01, tol: float = 1e-7
) -> dict[int, Aggregate]:
    """Dawid-Skene EM on numpy arrays: soft majority vote to start; the first M-step adds each member's
    gold answers as confusion counts (true × given); each M-step adds `smoothing` pseudo-counts, and EM
    runs until the item posteriors move less than `tol` (or `n_iter` rounds).

    Why not crowd-kit's DawidSkene: on the crowd replays it stops at a poorer fixed point (bird: 0.874
    against 0.913 on the same answers) — its confusions are unsmoothed and it stops on the ELBO. Same
    model, same input format, so it can be swapped back with method="crowdkit_dawid_skene".
    """
    if not votes:
        return {}
    items = sorted({v.item_id for v in votes})
    users = sorted({v.user_id for v in votes})
    classes = sorted({v.value for v in votes} | {truth for _, _, truth in gold_votes}, key=str)
    item_index = {item: i for i, item in enumerate(items)}
    user_index = {user: i for i, user in enumerate(users)}
    class_index = {value: i for i, value in enumerate(classes)}
    n_items, n_users, k = len(items), len(users), len(classes)
    task = np.fromiter((item_index[v.item_id] for v in votes), dtype=np.int64, count=len(votes))
    worker = np.fromiter((user_index[v.user_id] for v in votes), dtype=np.int64, count=len(votes))
    given = np.fromiter((class_index[v.value] for v in votes), dtype=np.int64, count=len(votes))
    gold_counts = np.zeros((n_users, k, k))
    for user_id, answer, truth in gold_votes:
        if user_id in user_index and answer in class_index and truth in class_index:
            gold_counts[user_index[user_id], class_index[truth], class_index[answer]] += 1.0
    posterior = np.zeros((n_items, k))
    for value in range(k):
        posterior[:, value] = np.bincount(task, weights=(given == value).astype(float), minlength=n_items)
    posterior /= posterior.sum(axis=1, keepdims=True)
    for round_number in range(n_iter):
        prior = posterior.mean(axis=0) + 1e-9
        prior /= prior.sum()
        confusion = np.full((n_users, k, k), smoothing / k)
        if round_number == 0:
            confusion += gold_counts
        # confusion[u, true, given] += P(item's truth = true) for every answer `given` of member u
        # (np.bincount is the fast scatter-add: np.add.at is ten times slower on 100,000 answers.)
        answer_cell = worker * k + given
        for true in range(k):
            confusion[:, true, :] += np.bincount(answer_cell, weights=posterior[task, true], minlength=n_users * k).reshape(n_users, k)
        confusion /= confusion.sum(axis=2, keepdims=True)
        log_confusion = np.log(confusion)
        log_post = np.empty((n_items, k))
        for true in range(k):
            log_post[:, true] = np.log(prior[true]) + np.bincount(task, weights=log_confusion[worker, true, given], minlength=n_items)
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        change = np.abs(updated - posterior).max()
        posterior = updated
        if change < tol:
            break
    by_item: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_item[vote.item_id].append(vote)
    best = posterior.argmax(axis=1)
    result = {}
    for row, item_id in enumerate(items):
        choice = classes[best[row]]
        result[int(item_id)] = Aggregate(
            value=choice,
            confidence=float(posterior[row, best[row]]),
            submission_ids=[v.submission_id for v in by_item[item_id] if v.value == choice],
        )
    return result


# --- texts --------------------------------------------------------------------------------------

def aggregate_texts(
    votes: Sequence[Vote],
    *,
    matches: Callable[[str, str], bool],
    skills: dict[int, float] | None = None,
) -> dict[int, Aggregate]:
    """ROVER over word tokens; confidence = the skill-weighted share of answers that match the result."""
    # crowd-kit (and pandas) load slowly: only the methods that use them pay for the import.
    import pandas as pd
    from crowdkit.aggregation import ROVER

    if not votes:
        return {}
    by_item: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_item[vote.item_id].append(vote)
    result = {}
    multi = []
    for item_id, item_votes in by_item.items():
        texts = {" ".join(str(v.value).split()) for v in item_votes}
        if len(texts) == 1:
            result[item_id] = None  # unanimous: nothing to align
        else:
            multi.extend(item_votes)
    rover_texts = {}
    if multi:
        frame = pd.DataFrame(
            {"task": [v.item_id for v in multi], "worker": [v.submission_id for v in multi], "text": [" ".join(str(v.value).split()) for v in multi]}
        )
        rover_texts = ROVER(tokenizer=lambda s: s.split(" "), detokenizer=lambda tokens: " ".join(tokens)).fit_predict(frame).to_dict()
    for item_id, item_votes in by_item.items():
        text = rover_texts.get(item_id)
        if text is None:
            text = " ".join(str(item_votes[0].value).split())
        text = " ".join(str(text).split())
        weights = [skills.get(v.user_id, 1.0) if skills else 1.0 for v in item_votes]
        agreeing = [i for i, v in enumerate(item_votes) if matches(text, str(v.value))]
        total = sum(weights) or 1.0
        result[item_id] = Aggregate(
            value=text,
            confidence=sum(weights[i] for i in agreeing) / total,
            submission_ids=[item_votes[i].submission_id for i in agreeing],
        )
    return result


# --- boxes --------------------------------------------------------------------------------------

def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter_w = min(ax2, bx2) - max(a[0], b[0])
    inter_h = min(ay2, by2) - max(a[1], b[1])
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    order = sorted(range(len(values)), key=lambda i: values[i])
    half = sum(weights) / 2
    running = 0.0
    for i in order:
        running += weights[i]
        if running >= half:
            return values[i]
    return values[order[-1]]


def consensus_boxes(answers: Sequence[tuple[float, list[dict]]]) -> list[dict]:
    """Fuse (weight, boxes) answers of one item into consensus boxes (see the module docstring)."""
    total = sum(weight for weight, _ in answers) or 1.0
    clusters: list[dict] = []  # {"label", "box": [x,y,w,h], "members": [(weight, [x,y,w,h], answer_index)]}
    for index, (weight, boxes) in enumerate(answers):
        taken = set()
        for box in sorted(boxes, key=lambda b: -b["w"] * b["h"]):
            coords = [box["x"], box["y"], box["w"], box["h"]]
            best, best_iou = None, BOX_CLUSTER_IOU
            for number, cluster in enumerate(clusters):
                if number in taken or cluster["label"] != box.get("label"):
                    continue
                iou = _iou(cluster["box"], coords)
                if iou >= best_iou:
                    best, best_iou = number, iou
            if best is None:
                clusters.append({"label": box.get("label"), "box": coords, "members": [(weight, coords, index)]})
                taken.add(len(clusters) - 1)
            else:
                cluster = clusters[best]
                cluster["members"].append((weight, coords, index))
                weights = [m[0] for m in cluster["members"]]
                cluster["box"] = [_weighted_median([m[1][k] for m in cluster["members"]], weights) for k in range(4)]
                taken.add(best)
    fused = []
    for cluster in clusters:
        support = sum(m[0] for m in cluster["members"])
        if support * 2 >= total:
            x, y, w, h = (int(round(v)) for v in cluster["box"])
            box = {"x": x, "y": y, "w": max(1, w), "h": max(1, h)}
            if cluster["label"] is not None:
                box["label"] = cluster["label"]
            fused.append(box)
    fused.sort(key=lambda b: (b["y"], b["x"]))
    return fused


def aggregate_boxes(
    votes: Sequence[Vote],
    *,
    matches: Callable[[list[dict], list[dict]], bool],
    skills: dict[int, float] | None = None,
) -> dict[int, Aggregate]:
    by_item: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_item[vote.item_id].append(vote)
    result = {}
    for item_id, item_votes in by_item.items():
        weights = [skills.get(v.user_id, 1.0) if skills else 1.0 for v in item_votes]
        boxes = consensus_boxes([(w, list(v.value)) for w, v in zip(weights, item_votes, strict=True)])
        agreeing = [i for i, v in enumerate(item_votes) if matches(boxes, list(v.value))]
        total = sum(weights) or 1.0
        result[item_id] = Aggregate(
            value=boxes,
            confidence=sum(weights[i] for i in agreeing) / total,
            submission_ids=[item_votes[i].submission_id for i in agreeing],
        )
    return result


# --- agreement ----------------------------------------------------------------------------------

def krippendorff_alpha_nominal(units: Iterable[Sequence[object]]) -> float | None:
    """Krippendorff's alpha for nominal values: 1 − observed / expected disagreement, from the
    coincidence matrix. Units with fewer than two values are not pairable and are skipped.
    None when nothing is pairable or every value is the same (alpha is undefined)."""
    coincidences: dict[tuple[object, object], float] = defaultdict(float)
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts: dict[object, int] = defaultdict(int)
        for value in values:
            counts[value] += 1
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                if pairs:
                    coincidences[(c, k)] += pairs / (m - 1)
    if not coincidences:
        return None
    marginals: dict[object, float] = defaultdict(float)
    for (c, _k), value in coincidences.items():
        marginals[c] += value
    n = sum(marginals.values())
    observed = sum(value for (c, k), value in coincidences.items() if c != k)
    expected = (n * n - sum(v * v for v in marginals.values())) / (n - 1) if n > 1 else 0.0
    if expected == 0:
        return None
    return 1.0 - observed / expected


def clamp_confidence(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return max(0.0, min(1.0, value))
