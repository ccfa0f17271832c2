"""Aggregation arithmetic: answers in, one label per item with a confidence out. No database here.

Classification: "calibrated" (the default, below), Dawid-Skene (our vectorised EM, see `dawid_skene`),
crowd-kit's Wawa, majority vote weighted by member skill, or crowd-kit's own DawidSkene
("crowdkit_dawid_skene", kept for comparison). Transcripts, cleaned text and boxes take the skill-weighted
medoid of `sapien/quality/consensus.py` (online and in batch alike); the calibration of confidences, and
the account of how the "calibrated" method was chosen (issue 18), in `sapien/quality/calibration.py`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sapien.quality.calibration import (
    CALIBRATION_PRIOR,
    GOLD_FIT_PRECISION,
    GOLD_FIT_PRIOR,
    apply_calibration,
    fit_calibration,
)

CLASSIFICATION_METHODS = ("calibrated", "dawid_skene", "wawa", "majority_vote", "crowdkit_dawid_skene")


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


# The online posterior that retires an item. Each member's confusion matrix is their own evidence in
# the pack (gold answers, half-weighted agreement with verified labels) plus ONLINE_POOL_STRENGTH
# pseudo-answers per row of the crowd's pooled confusion on the pack's gold items (itself starting from
# `prior_confusion` at the default member accuracy): a member with little history counts as an average
# member of this crowd, not as the near-perfect worker a symmetric prior makes of them. An item retires
# only when the calibrated top posterior reaches the threshold and at least ONLINE_MIN_SUPPORT answers
# agree with it.
ONLINE_POOL_STRENGTH = 1.0
ONLINE_MIN_SUPPORT = 2
ONLINE_BASE_ACCURACY = 0.725
ONLINE_BASE_STRENGTH = 4.0


def pooled_confusion(k: int, gold_counts: np.ndarray | None = None) -> np.ndarray:
    """The crowd's confusion (rows: true class, columns: given class, rows sum to 1) from the pack's gold
    answers [true, given], starting from a symmetric prior at the default member accuracy."""
    counts = prior_confusion(k, ONLINE_BASE_ACCURACY, ONLINE_BASE_STRENGTH)
    if gold_counts is not None:
        counts = counts + gold_counts
    return counts / counts.sum(axis=1, keepdims=True)


def shrunk_confusion(own_counts: np.ndarray | None, pooled: np.ndarray, strength: float = ONLINE_POOL_STRENGTH) -> np.ndarray:
    """A member's confusion rows: their own counts [true, given] plus `strength` pseudo-answers per row
    drawn from the crowd's pooled confusion, normalised."""
    counts = strength * pooled if own_counts is None else strength * pooled + own_counts
    return counts / counts.sum(axis=1, keepdims=True)


@dataclass
class OnlinePosterior:
    posterior: np.ndarray
    best: int
    confidence: float  # calibrated (CALIBRATION_PRIOR), what retirement compares with the threshold
    support: int  # answers that gave the best class

    def retires(self, threshold: float, min_support: int = ONLINE_MIN_SUPPORT) -> bool:
        return self.confidence >= threshold and self.support >= min_support


def online_posterior(k: int, votes: Sequence[tuple[int, np.ndarray | None]], pooled: np.ndarray, strength: float = ONLINE_POOL_STRENGTH) -> OnlinePosterior:
    """`votes`: (given class, the member's own evidence counts [true, given] or None)."""
    confusions = [(given, shrunk_confusion(own, pooled, strength)) for given, own in votes]
    posterior = class_posterior(k, confusions)
    best = int(np.argmax(posterior))
    confidence = float(apply_calibration([posterior[best]], CALIBRATION_PRIOR)[0])
    return OnlinePosterior(posterior, best, confidence, sum(1 for given, _ in votes if given == best))


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
    gold_truth: dict[int, object] | None = None,
    n_iter: int = 100,
) -> dict[int, Aggregate]:
    """One label per item. `gold_votes` are (user_id, given, true) from gold items: they initialise
    Dawid-Skene's confusion matrices (crowd-kit's "addition" strategy). `skills` weigh majority vote.
    `gold_truth` (gold item id → true value; the gold items' answers are among `votes`) is what the
    "calibrated" method selects its model on and calibrates with."""
    if method not in CLASSIFICATION_METHODS:
        raise ValueError(f"unknown classification method {method!r}")
    if not votes:
        return {}
    if method == "dawid_skene":
        return dawid_skene(votes, gold_votes=gold_votes, n_iter=n_iter)
    if method == "calibrated":
        return calibrated_classification(votes, gold_truth=gold_truth or {}, n_iter=n_iter).labels
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


def _e_step(prior: np.ndarray, log_confusion: np.ndarray, task: np.ndarray, worker: np.ndarray, given: np.ndarray, n_items: int) -> np.ndarray:
    """Dawid-Skene's E-step for every item at once: P(truth = class | the item's answers), rows sum to 1.
    `log_confusion[u, true, given]`; `task`, `worker`, `given` are the answers' item, member and class indices."""
    k = len(prior)
    log_post = np.empty((n_items, k))
    for true in range(k):
        log_post[:, true] = np.log(prior[true]) + np.bincount(task, weights=log_confusion[worker, true, given], minlength=n_items)
    log_post -= log_post.max(axis=1, keepdims=True)
    posterior = np.exp(log_post)
    return posterior / posterior.sum(axis=1, keepdims=True)


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
        updated = _e_step(prior, np.log(confusion), task, worker, given, n_items)
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


# --- calibrated classification: models chosen on held-out gold, Platt-calibrated confidence -------

# Candidate models, in order of preference (a tie on gold goes to the earlier one).
CANDIDATE_MODELS = ("dawid_skene", "pooled_dawid_skene", "one_coin", "majority_vote")
# Pseudo-answers per row of the crowd's pooled confusion in "pooled_dawid_skene" (a member with many
# answers outweighs it; one with a handful is mostly the crowd's average).
POOLED_STRENGTH = 3.0


@dataclass
class Fit:
    posterior: np.ndarray  # (items, classes)
    confusion: np.ndarray  # (members, true, given), rows sum to 1
    prior: np.ndarray  # (classes,)


def fit_classes(
    task: np.ndarray,
    worker: np.ndarray,
    given: np.ndarray,
    n_items: int,
    n_users: int,
    k: int,
    *,
    model: str = "dawid_skene",
    gold_counts: np.ndarray | None = None,
    n_iter: int = 100,
    smoothing: float = 0.01,
    strength: float = POOLED_STRENGTH,
    tol: float = 1e-7,
) -> Fit:
    """EM for one of CANDIDATE_MODELS on integer-coded answers (answer j: item task[j], member worker[j],
    class given[j]). `gold_counts` (members × true × given) join the first M-step, as in `dawid_skene`.

    - dawid_skene: a full confusion matrix per member (smoothed by `smoothing` pseudo-counts).
    - pooled_dawid_skene: each member's confusion rows are their own soft counts plus `strength`
      pseudo-answers drawn from the crowd's pooled confusion (a hierarchical prior: the fewer answers a
      member has, the more they look like the crowd).
    - one_coin: one accuracy per member, mistakes spread evenly over the other classes.
    - majority_vote: every answer counts the same; the posterior is the item's vote shares.
    """
    counts_per_item = np.zeros((n_items, k))
    for value in range(k):
        counts_per_item[:, value] = np.bincount(task, weights=(given == value).astype(float), minlength=n_items)
    votes = counts_per_item.sum(axis=1, keepdims=True)
    posterior = counts_per_item / np.where(votes > 0, votes, 1)
    posterior[votes[:, 0] == 0] = 1.0 / k
    if model == "majority_vote":
        confusion = np.full((n_users, k, k), 1.0 / k)
        return Fit(posterior, confusion, posterior.mean(axis=0))
    if model not in CANDIDATE_MODELS:
        raise ValueError(f"unknown model {model!r}")
    answer_cell = worker * k + given
    diagonal = np.arange(k)
    for round_number in range(n_iter):
        prior = posterior.mean(axis=0) + 1e-9
        prior /= prior.sum()
        counts = np.zeros((n_users, k, k))
        for true in range(k):
            counts[:, true, :] = np.bincount(answer_cell, weights=posterior[task, true], minlength=n_users * k).reshape(n_users, k)
        if round_number == 0 and gold_counts is not None:
            counts += gold_counts
        if model == "dawid_skene":
            confusion = counts + smoothing / k
        elif model == "pooled_dawid_skene":
            pooled = counts.sum(axis=0) + smoothing
            pooled /= pooled.sum(axis=1, keepdims=True)
            confusion = counts + strength * pooled[None]
        else:  # one_coin
            right = counts[:, diagonal, diagonal].sum(axis=1)
            accuracy = (right + 1.0) / (counts.sum(axis=(1, 2)) + 2.0)
            confusion = np.repeat(((1 - accuracy) / max(1, k - 1))[:, None, None], k, axis=1).repeat(k, axis=2)
            confusion[:, diagonal, diagonal] = accuracy[:, None]
        confusion = confusion / confusion.sum(axis=2, keepdims=True)
        updated = _e_step(prior, np.log(np.clip(confusion, 1e-12, None)), task, worker, given, n_items)
        change = np.abs(updated - posterior).max()
        posterior = updated
        if change < tol:
            break
    return Fit(posterior, confusion, prior)


@dataclass
class CalibratedResult:
    labels: dict[int, Aggregate]
    model: str
    gold_accuracy: dict[str, float]  # per candidate model, truth of the gold items hidden
    calibration: tuple[float, float]


def calibrated_classification(
    votes: Sequence[Vote], *, gold_truth: dict[int, object], models: Sequence[str] = CANDIDATE_MODELS, n_iter: int = 100
) -> CalibratedResult:
    """One label per item with a calibrated confidence (see the module docstring).

    Every candidate model is fitted on all answers with the gold items' truth hidden; the one right on
    most gold items wins (ties to the earlier model). Its top posterior is then Platt-scaled on the gold
    items (`fit_calibration`). Labels are returned for every item (gold items too: the caller drops them).
    """
    if not votes:
        return CalibratedResult({}, models[0], {}, CALIBRATION_PRIOR)
    items = sorted({v.item_id for v in votes})
    users = sorted({v.user_id for v in votes})
    classes = sorted({v.value for v in votes} | set(gold_truth.values()), key=str)
    item_index = {item: i for i, item in enumerate(items)}
    user_index = {user: i for i, user in enumerate(users)}
    class_index = {value: i for i, value in enumerate(classes)}
    task = np.fromiter((item_index[v.item_id] for v in votes), dtype=np.int64, count=len(votes))
    worker = np.fromiter((user_index[v.user_id] for v in votes), dtype=np.int64, count=len(votes))
    given = np.fromiter((class_index[v.value] for v in votes), dtype=np.int64, count=len(votes))
    gold_rows = np.array([item_index[item] for item in gold_truth if item in item_index], dtype=np.int64)
    gold_classes = np.array([class_index[gold_truth[item]] for item in gold_truth if item in item_index], dtype=np.int64)
    fits, gold_accuracy = {}, {}
    for model in models:
        fits[model] = fit_classes(task, worker, given, len(items), len(users), len(classes), model=model, n_iter=n_iter)
        on_gold = fits[model].posterior[gold_rows]
        gold_accuracy[model] = float((on_gold.argmax(axis=1) == gold_classes).mean()) if len(gold_rows) else 0.0
    chosen = max(models, key=lambda m: (gold_accuracy[m], -models.index(m)))
    posterior = fits[chosen].posterior
    best = posterior.argmax(axis=1)
    top = posterior[np.arange(len(items)), best]
    calibration = fit_calibration(top[gold_rows], best[gold_rows] == gold_classes, prior=GOLD_FIT_PRIOR, precision=GOLD_FIT_PRECISION)
    confidence = apply_calibration(top, calibration)
    by_item: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_item[vote.item_id].append(vote)
    labels = {}
    for row, item_id in enumerate(items):
        choice = classes[best[row]]
        labels[int(item_id)] = Aggregate(
            value=choice,
            confidence=float(confidence[row]),
            submission_ids=[v.submission_id for v in by_item[item_id] if v.value == choice],
        )
    return CalibratedResult(labels, chosen, gold_accuracy, calibration)


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
