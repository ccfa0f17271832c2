"""Detectors: each a plain function over plain rows (what `community.py` reads from the database), returning
findings `{member id: Finding}`. An empty or one-member community gives no findings and no error.

- `fast_answers`: answers faster than the task type's floor, for most of a member's answers;
- `shared_signals`: accounts joined by a shared device, network or wallet (connected components);
- `collusion`: pairs giving the *same wrong* answer to gold items far more often than chance allows (a
  binomial tail, corrected for the number of pairs tested);
- `rubber_stamp`: reviewers who accept nearly everything, fast, and fail their planted audits;
- `review_rings`: members who review each other's work in a circle (cycles of up to four);
- `signup_bursts`: many sign-ups from one network within an hour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

import networkx as nx
from scipy.stats import binom

from sapien.moderation.verdicts import Cluster

# The fastest a careful person answers one item of each type (milliseconds).
SPEED_FLOORS_MS = {
    "text_classification": 1500,
    "image_classification": 1200,
    "text_cleaning": 4000,
    "audio_transcription": 4000,
    "bounding_boxes": 2500,
}
DEFAULT_FLOOR_MS = 1500
FAST_MIN_ANSWERS = 5
FAST_SHARE = 0.5
COLLUSION_MIN_SHARED = 3
COLLUSION_ALPHA = 0.01
PRIOR_ERROR = 0.2  # the share of gold answers a community gets wrong, before it has answered many
PRIOR_WEIGHT = 20
RUBBER_MIN_REVIEWS = 10
RUBBER_ACCEPT_RATE = 0.95
RUBBER_FAST_SECONDS = 5.0
RING_MIN_REVIEWS = 2
RING_MAX_LENGTH = 4
BURST_WINDOW = timedelta(hours=1)
BURST_MIN_SIGNUPS = 5


@dataclass
class Finding:
    kind: str
    score: float  # 0..1, how strong the evidence is
    summary: str  # plain English for the console (numbers, not prose: the template translates the kind)
    members: list[int] = field(default_factory=list)  # other members involved
    details: dict = field(default_factory=dict)


Findings = dict[int, Finding]


@dataclass(frozen=True)
class SpeedRow:
    user_id: int
    task_type: str
    answers: int
    fast: int  # answers under the floor
    rejected: int = 0  # answers rejected (a wrong gold answer, a reviewer's reject)


def fast_answers(rows: Iterable[SpeedRow]) -> Findings:
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        totals[row.user_id][0] += row.answers
        totals[row.user_id][1] += row.fast
    found = {}
    for user_id, (answers, fast) in totals.items():
        if answers >= FAST_MIN_ANSWERS and fast / answers >= FAST_SHARE:
            found[user_id] = Finding("fast_answers", round(fast / answers, 3), f"{fast}/{answers}", details={"answers": answers, "fast": fast})
    return found


def shared_signals(clusters: Sequence[Cluster]) -> Findings:
    """Every member of a cluster joined by a device or wallet; network-only clusters from three accounts up."""
    found = {}
    for cluster in clusters:
        strong = "device" in cluster.shared or "wallet" in cluster.shared
        if not strong and len(cluster.member_ids) < 3:
            continue
        score = min(1.0, (0.6 if strong else 0.3) + 0.1 * len(cluster.member_ids))
        for user_id in cluster.member_ids:
            found[user_id] = Finding(
                "shared_signals", round(score, 3), f"{len(cluster.member_ids)}:{','.join(cluster.shared)}",
                members=[m for m in cluster.member_ids if m != user_id], details={"shared": list(cluster.shared)},
            )
    return found


@dataclass(frozen=True)
class WrongGold:
    item_id: int
    user_id: int
    answer_key: str  # the wrong answer, canonical text


def collusion(wrong: Iterable[WrongGold], gold_answered: dict[int, int]) -> Findings:
    """Pairs agreeing on the same wrong gold answers far beyond chance.

    With the community wrong on a share `p` of gold answers (shrunk towards `PRIOR_ERROR`), two independent
    members agree on a wrong answer to a gold item they both answered with probability at most q = p²/2. A
    pair sharing k wrong answers over n common gold items is flagged when k ≥ `COLLUSION_MIN_SHARED` and the
    binomial tail P(X ≥ k | n, q) is below `COLLUSION_ALPHA` divided by the number of pairs tested (a
    Bonferroni correction: among a million honest pairs a one-in-a-million coincidence is not evidence).
    """
    wrong = list(wrong)
    answered = sum(gold_answered.values())
    p = (len(wrong) + PRIOR_ERROR * PRIOR_WEIGHT) / (answered + PRIOR_WEIGHT)
    q = min(0.5, p * p / 2)
    by_item: dict[tuple[int, str], list[int]] = defaultdict(list)
    for row in wrong:
        by_item[(row.item_id, row.answer_key)].append(row.user_id)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for users in by_item.values():
        for a, b in combinations(sorted(set(users)), 2):
            shared[(a, b)] += 1
    found: Findings = {}
    threshold = COLLUSION_ALPHA / max(1, len(shared))
    for (a, b), count in shared.items():
        if count < COLLUSION_MIN_SHARED:
            continue
        common = max(count, min(gold_answered.get(a, count), gold_answered.get(b, count)))
        tail = float(binom.sf(count - 1, common, q))
        if tail >= threshold:
            continue
        ratio = count / max(common * q, 1e-9)
        score = min(1.0, 0.5 + count / common)
        for me, other in ((a, b), (b, a)):
            finding = found.get(me)
            if finding is None:
                found[me] = finding = Finding("collusion", 0.0, "", details={"pairs": []})
            finding.members.append(other)
            finding.details["pairs"].append([other, count, round(ratio, 1)])
            finding.score = max(finding.score, round(score, 3))
    for finding in found.values():
        finding.summary = ";".join(f"{other}:{count}" for other, count, _ratio in finding.details["pairs"])
    return found


@dataclass(frozen=True)
class ReviewerRow:
    reviewer_id: int
    reviews: int  # real reviews decided
    accepted: int
    median_seconds: float | None  # from claim to decision
    planted: int
    planted_failed: int


def rubber_stamp(rows: Iterable[ReviewerRow]) -> Findings:
    found = {}
    for row in rows:
        if row.reviews < RUBBER_MIN_REVIEWS:
            continue
        rate = row.accepted / row.reviews
        fast = row.median_seconds is not None and row.median_seconds < RUBBER_FAST_SECONDS
        failing = row.planted >= 2 and row.planted_failed / row.planted >= 0.5
        if rate >= RUBBER_ACCEPT_RATE and (fast or failing):
            score = min(1.0, 0.4 + 0.3 * fast + 0.3 * failing)
            found[row.reviewer_id] = Finding(
                "rubber_stamp", round(score, 3), f"{row.accepted}/{row.reviews}",
                details={"accept_rate": round(rate, 3), "median_seconds": row.median_seconds, "planted": row.planted,
                         "planted_failed": row.planted_failed},
            )
    return found


def review_rings(edges: Iterable[tuple[int, int, int]]) -> Findings:
    """`edges`: (reviewer, author, reviews accepted). Cycles of two to four members, each of whom accepted
    the next one's work at least `RING_MIN_REVIEWS` times."""
    graph = nx.DiGraph()
    graph.add_edges_from((reviewer, author) for reviewer, author, count in edges if count >= RING_MIN_REVIEWS and reviewer != author)
    found: Findings = {}
    if graph.number_of_edges() < 2:
        return found
    for cycle in nx.simple_cycles(graph, length_bound=RING_MAX_LENGTH):
        members = sorted(cycle)
        for user_id in members:
            finding = found.setdefault(user_id, Finding("review_ring", 0.0, "", details={"rings": []}))
            finding.details["rings"].append(members)
            finding.members = sorted(set(finding.members) | {m for m in members if m != user_id})
            finding.score = min(1.0, 0.6 + 0.1 * len(finding.details["rings"]))
            finding.summary = str(len(finding.details["rings"]))
    return found


def signup_bursts(signups: Iterable[tuple[str, datetime, int]]) -> Findings:
    """`signups`: (network, when, member). At least `BURST_MIN_SIGNUPS` sign-ups from one network within
    `BURST_WINDOW` flag every account in the burst."""
    by_network: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for network, when, user_id in signups:
        if network and network not in ("unknown", "local"):
            by_network[network].append((when, user_id))
    found: Findings = {}
    for network, rows in by_network.items():
        rows.sort()
        start = 0
        for end in range(len(rows)):
            while rows[end][0] - rows[start][0] > BURST_WINDOW:
                start += 1
            if end - start + 1 >= BURST_MIN_SIGNUPS:
                burst = sorted({user_id for _when, user_id in rows[start:end + 1]})
                for user_id in burst:
                    found[user_id] = Finding(
                        "signup_burst", min(1.0, 0.3 + 0.05 * len(burst)), f"{len(burst)}:{network}",
                        members=[m for m in burst if m != user_id], details={"network": network},
                    )
    return found
