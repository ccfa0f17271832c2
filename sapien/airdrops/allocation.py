"""Scores and allocations: plain integer arithmetic, so the same inputs give the same amounts everywhere.

- Each criterion's value is divided by the largest value among eligible members, then weighted:
  score = Σ weight × value / largest, kept as an exact integer (see `scores`). With `sqrt`, the score is
  its integer square root (scaled by SCALE, to keep precision), which damps whales.
- The total is shared pro rata to the scores, then members below the floor are raised to it and members
  above the cap cut to it, the rest shared again among the others, until nobody crosses a bound.
- Amounts are whole base units: each gets the rounded-down share and the units left over go one by one
  to the largest remainders (ties to the lower member id), never above the cap. The sum is the total
  exactly (or less when every member is at the cap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import isqrt

SCALE = 1_000_000


class AllocationError(ValueError):
    pass


def scores(values: Mapping[int, Mapping[str, int]], weights: Mapping[str, int], sqrt: bool) -> dict[int, int]:
    """Member id → score: Σ weight × value / (the criterion's largest value), kept exact by multiplying
    every term by the product of the largest values (so ratios between members are exact)."""
    highest = {name: max((max(0, member_values.get(name, 0)) for member_values in values.values()), default=0) for name in weights}
    used = {name: weight for name, weight in weights.items() if highest[name] > 0}
    product = 1
    for name in used:
        product *= highest[name]
    factors = [(name, weight * (product // highest[name])) for name, weight in used.items()]
    result = {}
    for member_id, member_values in values.items():
        score = 0
        for name, factor in factors:
            value = member_values.get(name, 0)
            if value > 0:
                score += factor * value
        result[member_id] = isqrt(score * SCALE * SCALE // product) if sqrt else score
    return result


def allocate(member_scores: Mapping[int, int], total: int, floor: int = 0, cap: int = 0) -> dict[int, int]:
    """Member id → amount in base units (see the module docstring)."""
    members = sorted(member_scores)
    if not members:
        return {}
    if floor * len(members) > total:
        raise AllocationError(f"the floor for {len(members)} members needs {floor * len(members)} units, more than the total {total}")
    fixed: dict[int, int] = {}
    while True:
        free = [member for member in members if member not in fixed]
        remaining = total - sum(fixed.values())
        free_score = sum(member_scores[member] for member in free)
        if not free:
            break
        shares = {member: _share(remaining, member_scores[member], free_score, len(free)) for member in free}
        denominator = _denominator(free_score, len(free))
        low = [member for member in free if shares[member] < floor * denominator]
        high = [member for member in free if cap and shares[member] > cap * denominator]
        if not low and not high:
            break
        # Fix the biggest violation side first: floors, then caps, one pass at a time.
        for member in low or high:
            fixed[member] = floor if low else cap
    amounts = dict(fixed)
    free = [member for member in members if member not in fixed]
    if free:
        remaining = total - sum(fixed.values())
        free_score = sum(member_scores[member] for member in free)
        denominator = _denominator(free_score, len(free))
        remainders = []
        for member in free:
            numerator = _share(remaining, member_scores[member], free_score, len(free))
            amounts[member], rest = divmod(numerator, denominator)
            remainders.append((-rest, member))
        left = remaining - sum(amounts[member] for member in free)
        for _rest, member in sorted(remainders):
            if left <= 0:
                break
            if cap and amounts[member] >= cap:
                continue
            amounts[member] += 1
            left -= 1
    return amounts


def _share(remaining: int, score: int, free_score: int, free_count: int) -> int:
    """A member's share of `remaining`, times free_score × free_count (exact integers; equal shares when
    every score is zero)."""
    if free_score == 0:
        return remaining * free_count
    return remaining * score * free_count


def _denominator(free_score: int, free_count: int) -> int:
    return free_score * free_count if free_score else free_count * free_count


def summarize(amounts: Sequence[int]) -> dict[str, int]:
    ordered = sorted(amounts)
    if not ordered:
        return {"count": 0, "total": 0, "min": 0, "median": 0, "max": 0}
    return {"count": len(ordered), "total": sum(ordered), "min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}
