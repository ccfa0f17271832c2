from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sapien.ledger import service as ledger
from sapien.progression import errors as progression_errors
from sapien.progression import streaks
from tests.progression.helpers import NOW, accept, days, make_user


def test_consecutive_days_build_a_streak_and_a_gap_resets_it(ctx):
    user_id = make_user("steady")
    accept(user_id, NOW)
    accept(user_id, NOW + days(0))  # same day: counted once
    accept(user_id, NOW + days(1))
    accept(user_id, NOW + days(2))
    state = streaks.streak_state(user_id, NOW + days(2))
    assert (state.current, state.longest, state.active_today) == (3, 3, True)
    # The next day without activity yet, the streak is still alive.
    assert streaks.streak_state(user_id, NOW + days(3)).current == 3
    # Two days later with nothing in between: broken.
    assert streaks.streak_state(user_id, NOW + days(4)).current == 0
    accept(user_id, NOW + days(4))
    state = streaks.streak_state(user_id, NOW + days(4))
    assert (state.current, state.longest) == (1, 3)


def test_days_are_counted_in_the_members_time_zone(ctx):
    # Jakarta is UTC+7: 20:00 UTC on the 18th is 03:00 on the 19th there.
    user_id = make_user("jakarta", timezone="Asia/Jakarta")
    accept(user_id, datetime(2026, 11, 18, 10, 0, tzinfo=UTC))  # 17:00 on the 18th, local
    accept(user_id, datetime(2026, 11, 18, 20, 0, tzinfo=UTC))  # 03:00 on the 19th, local: a new day
    assert streaks.streak_state(user_id, datetime(2026, 11, 18, 20, 0, tzinfo=UTC)).current == 2
    # The same two UTC instants for a UTC member are one day.
    utc_user = make_user("greenwich")
    accept(utc_user, datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    accept(utc_user, datetime(2026, 11, 18, 20, 0, tzinfo=UTC))
    assert streaks.streak_state(utc_user, datetime(2026, 11, 18, 20, 0, tzinfo=UTC)).current == 1


def test_a_changed_time_zone_moves_the_streak_day(ctx):
    from sapien.accounts import service as accounts

    user_id = make_user("traveller")
    accept(user_id, datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    accept(user_id, datetime(2026, 11, 18, 20, 0, tzinfo=UTC))  # same UTC day
    assert streaks.streak_state(user_id, datetime(2026, 11, 18, 20, 0, tzinfo=UTC)).current == 1
    accounts.update_profile(user_id, display_name="Traveller", bio="", country=None, timezone="Asia/Jakarta", locale=None,
                            hide_from_boards=False, languages={"en": "English"})
    # 18:00 UTC on the 19th is already the 20th in Jakarta: the next local day after the 19th (local).
    accept(user_id, datetime(2026, 11, 19, 18, 0, tzinfo=UTC))
    state = streaks.streak_state(user_id, datetime(2026, 11, 19, 18, 0, tzinfo=UTC))
    assert state.last_active_day.isoformat() == "2026-11-20"


def test_a_freeze_protects_exactly_one_missed_day(ctx):
    user_id = make_user("frosty")
    assert streaks.grant_streak_freeze(user_id, key="gift:1", now=NOW)
    assert not streaks.grant_streak_freeze(user_id, key="gift:1", now=NOW)  # same reward: once
    accept(user_id, NOW)
    accept(user_id, NOW + days(1))
    # Miss day 2, come back on day 3: the freeze covers it.
    assert streaks.streak_state(user_id, NOW + days(3)).current == 2
    accept(user_id, NOW + days(3))
    state = streaks.streak_state(user_id, NOW + days(3))
    assert (state.current, state.freezes) == (3, 0)
    # Miss day 4 with no freeze left: broken.
    accept(user_id, NOW + days(5))
    assert streaks.streak_state(user_id, NOW + days(5)).current == 1


def test_one_freeze_does_not_cover_two_missed_days(ctx):
    user_id = make_user("thin_ice")
    streaks.grant_streak_freeze(user_id, key="gift:2", now=NOW)
    accept(user_id, NOW)
    accept(user_id, NOW + days(3))
    state = streaks.streak_state(user_id, NOW + days(3))
    assert (state.current, state.freezes) == (1, 1)  # the freeze was not wasted


def test_streak_multiplier_grows_and_is_capped(ctx):
    user_id = make_user("multiplied")
    assert streaks.streak_multiplier(user_id, NOW) == Decimal(1)
    for day in range(4):
        accept(user_id, NOW + days(day))
    assert streaks.streak_multiplier(user_id, NOW + days(3)) == Decimal("1.15")
    for day in range(4, 20):
        accept(user_id, NOW + days(day))
    assert streaks.streak_multiplier(user_id, NOW + days(19)) == Decimal("1.5")
    assert streaks.streak_multiplier(user_id, NOW + days(25)) == Decimal(1)  # broken streak


def test_buying_a_freeze_costs_points_once_a_day_and_respects_the_limit(ctx):
    user_id = make_user("shopper")
    with pytest.raises(progression_errors.ProgressionError, match="costs 200 points, and you have fewer"):
        streaks.buy_streak_freeze(user_id, NOW)
    assert streaks.streak_state(user_id, NOW).freezes == 0
    ledger.credit(user_id, "points", 1000, kind="quest_reward", key="p", now=NOW)
    streaks.buy_streak_freeze(user_id, NOW)
    assert ledger.balance(user_id, "points") == 800
    with pytest.raises(progression_errors.ProgressionError, match="already bought"):
        streaks.buy_streak_freeze(user_id, NOW)
    streaks.buy_streak_freeze(user_id, NOW + days(1))
    with pytest.raises(progression_errors.ProgressionError, match="most you can keep"):
        streaks.buy_streak_freeze(user_id, NOW + days(2))
    assert streaks.streak_state(user_id, NOW).freezes == 2
    assert ledger.balance(user_id, "points") == 600
