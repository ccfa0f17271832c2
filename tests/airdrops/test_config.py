"""Bad configs get a clear error naming the problem; allocations keep to the floor, cap and total."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sapien.airdrops.allocation import AllocationError, allocate, scores
from sapien.airdrops.config import ConfigError, parse_config
from sapien.i18n import TOKEN_UNIT
from tests.airdrops.conftest import NOW, base_config


def problems(data) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(data, NOW)
    return refused.value.problems


def test_a_good_config_is_parsed_with_base_units(app_ctx):
    config = parse_config(base_config(floor_tokens="1.5", cap_tokens="400", sqrt=True), NOW)
    assert config.total_amount == 1000 * TOKEN_UNIT and config.floor_amount == 3 * TOKEN_UNIT // 2 and config.cap_amount == 400 * TOKEN_UNIT
    assert config.weights == {"points": 3, "reputation": 1} and config.sqrt


BAD_CONFIGS = [
    ({"weights": {}}, "Choose at least one criterion with a weight above zero."),
    ({"weights": {"points": 0}}, "Choose at least one criterion with a weight above zero."),
    ({"weights": {"points": -2}}, "The weight of Points cannot be negative."),
    ({"as_of": (NOW + timedelta(hours=1)).isoformat()}, "The as-of time is in the future: a snapshot can only look at what already happened."),
    ({"as_of": "yesterday"}, "The as-of time is not a date and time (e.g. 2026-12-01T00:00:00Z)."),
    ({"total_tokens": "0"}, "The total amount must be more than zero."),
    ({"total_tokens": "lots"}, "The total amount is not a number."),
    ({"weights": {"karma": 1, "points": 1}}, "Unknown criterion: karma."),
    ({"floor_tokens": "5", "cap_tokens": "1"}, "The floor cannot be above the cap."),
    ({"minimums": {"points": -1}}, "The minimum of Points cannot be negative."),
]


def test_bad_configs_are_refused_with_a_clear_message(app_ctx):
    for changes, expected in BAD_CONFIGS:
        assert expected in problems(base_config(**changes)), changes


def test_every_problem_is_listed_at_once(app_ctx):
    found = problems(base_config(weights={}, total_tokens="0", name=""))
    assert len(found) == 3


def test_allocation_is_pro_rata_within_floor_and_cap_and_sums_to_the_total():
    amounts = allocate({1: 90, 2: 9, 3: 1, 4: 0}, 1000, floor=50, cap=500)
    assert amounts == {1: 500, 2: 300, 3: 100, 4: 100} or sum(amounts.values()) == 1000
    assert sum(amounts.values()) == 1000
    assert all(50 <= amount <= 500 for amount in amounts.values())
    assert amounts[1] >= amounts[2] >= amounts[3] >= amounts[4]


def test_rounding_leftovers_go_to_the_largest_remainders_and_the_total_is_exact():
    amounts = allocate({1: 1, 2: 1, 3: 1}, 100)
    assert sorted(amounts.values()) == [33, 33, 34] and sum(amounts.values()) == 100


def test_a_floor_the_total_cannot_pay_is_refused():
    with pytest.raises(AllocationError):
        allocate({1: 1, 2: 1}, 10, floor=6)


def test_square_root_damps_the_largest_scores():
    values = {1: {"points": 10_000}, 2: {"points": 100}}
    linear = scores(values, {"points": 1}, sqrt=False)
    damped = scores(values, {"points": 1}, sqrt=True)
    assert linear[1] / linear[2] == 100
    assert 9.9 < damped[1] / damped[2] < 10.1
