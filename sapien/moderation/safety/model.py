"""The fraud model: a logistic regression (scikit-learn) over per-member features (`community.FEATURES`),
trained on moderators' past decisions (restrict or ban: fraud; dismiss: not) plus a seeded set of honest
and fraudulent profiles. Each score comes with the features that drove it: the coefficient times the
member's standardised value, largest first (a linear model's exact contribution to the log-odds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sapien.moderation.safety.community import FEATURES

FLAG_THRESHOLD = 0.5
SEEDED_PER_CLASS = 400


def seeded_profiles(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` honest and `n` fraudulent feature rows drawn from seeded distributions: honest members answer at a
    human pace and are wrong on gold alone; cheats answer fast, share devices and networks, agree on wrong gold
    answers and stamp reviews. Some cheats hide one or two signals, some honest members look noisy."""
    rng = np.random.default_rng(seed)
    honest = np.column_stack([
        rng.uniform(0, 7, n), rng.beta(1, 12, n), rng.beta(2, 9, n), rng.poisson(0.2, n), 1 + rng.poisson(0.3, n),
        rng.beta(1, 15, n), rng.choice([0, 1], n, p=[0.7, 0.3]) * rng.beta(8, 2, n), rng.beta(1, 8, n), rng.choice([0, 1], n, p=[0.97, 0.03]),
    ])
    fraud = np.column_stack([
        rng.uniform(1.5, 7, n), rng.beta(6, 3, n), rng.beta(5, 4, n), rng.poisson(4, n), 2 + rng.poisson(2.5, n),
        rng.beta(2, 8, n), rng.choice([0, 1], n, p=[0.6, 0.4]) * rng.beta(30, 1, n), rng.beta(4, 4, n), rng.choice([0, 1], n, p=[0.5, 0.5]),
    ])
    # Hide a signal or two per cheat: the model must combine them.
    hide = rng.random((n, len(FEATURES))) < 0.2
    fraud = np.where(hide, honest[rng.permutation(n)], fraud)
    return np.vstack([honest, fraud]), np.concatenate([np.zeros(n), np.ones(n)])


@dataclass
class FraudModel:
    scaler: StandardScaler
    classifier: LogisticRegression

    def scores(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(0)
        return self.classifier.predict_proba(self.scaler.transform(rows))[:, 1]

    def contributions(self, row) -> list[tuple[str, float, float]]:
        """(feature, value, contribution to the log-odds) for the features pushing towards fraud, largest first."""
        scaled = self.scaler.transform(np.asarray([row], dtype=float))[0]
        parts = self.classifier.coef_[0] * scaled
        order = np.argsort(-parts)
        return [(FEATURES[i], round(float(row[i]), 3), round(float(parts[i]), 3)) for i in order if parts[i] > 0][:4]


def train(decided: list[tuple[list[float], int]] | None = None, seed: int = 7) -> FraudModel:
    """Fit on the seeded profiles plus moderators' decided cases (weighted higher: they are real)."""
    x, y = seeded_profiles(seed, SEEDED_PER_CLASS)
    weights = np.ones(len(y))
    if decided:
        x = np.vstack([x, np.asarray([row for row, _label in decided], dtype=float)])
        y = np.concatenate([y, np.asarray([label for _row, label in decided], dtype=float)])
        weights = np.concatenate([weights, np.full(len(decided), 5.0)])
    scaler = StandardScaler().fit(x)
    classifier = LogisticRegression(max_iter=500, C=1.0).fit(scaler.transform(x), y, sample_weight=weights)
    return FraudModel(scaler, classifier)


def precision_recall(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    true_positive = float(np.sum(predicted & truth))
    precision = true_positive / max(1.0, float(np.sum(predicted)))
    recall = true_positive / max(1.0, float(np.sum(truth)))
    return precision, recall
