"""Box consensus: IoU clustering (crowd-kit 1.4 has no box aggregator). Every member's boxes are matched
greedily to clusters (same label, IoU ≥ BOX_CLUSTER_IOU with the cluster's current box, at most one box per
member per cluster); a cluster supported by at least half of the item's answer weight becomes a box whose
edges are the weighted median of its members' edges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from sapien.quality.aggregation import Aggregate, Vote

BOX_CLUSTER_IOU = 0.5


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
