"""The parameter store: defaults, validated changes with their history, and rewards that follow the rates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sapien.economy import parameters
from sapien.economy.parameters import ParameterError, get_parameter, parameter_history, set_parameter
from sapien.i18n import TOKEN_UNIT
from sapien.labeling import leases, submissions

from .conftest import NOW, make_pack, make_user


def test_defaults_are_the_values_until_changed_and_every_change_is_history(ctx):
    admin = make_user(role="admin")
    assert get_parameter("conversion.auto_stake_bp") == 2000
    assert get_parameter("revenue.split") == {"contributors": 7000, "stakers": 2000, "treasury": 1000}
    assert parameter_history() == []

    set_parameter("conversion.auto_stake_bp", 2500, actor_id=admin, reason="More skin in the game", now=NOW)
    set_parameter("conversion.auto_stake_bp", 3000, actor_id=None, reason="Vote 7", now=NOW + timedelta(hours=1), proposal_id=7)

    assert get_parameter("conversion.auto_stake_bp") == 3000
    newest, oldest = parameter_history("conversion.auto_stake_bp")
    assert (oldest.old_value, oldest.new_value, oldest.actor_id, oldest.reason, oldest.proposal_id) == (2000, 2500, admin, "More skin in the game", None)
    assert (newest.old_value, newest.new_value, newest.actor_id, newest.proposal_id) == (2500, 3000, None, 7)
    assert [change.name for change in parameter_history()] == ["conversion.auto_stake_bp"] * 2


BAD_VALUES = [
        ("revenue.split", {"contributors": 7000, "stakers": 2000, "treasury": 500}, "add up to 100 %"),
        ("revenue.split", {"contributors": 10000, "stakers": 0}, "Give a share for each of"),
        ("conversion.auto_stake_bp", 10001, "from 0 to 10,000"),
        ("conversion.auto_stake_bp", -1, "from 0 to 10,000"),
        ("conversion.auto_stake_bp", True, "whole number"),
        ("conversion.tokens_per_1000_points", 0, "token amount"),
        ("staking.tiers", [{"months": 3, "min_amount": 1, "multiplier_bp": 10500}, {"months": 1, "min_amount": 1, "multiplier_bp": 10500}],
         "shortest lock"),
        ("slashing.shares", {"warning": 0, "moderate": 2500, "severe": 12000}, "from 0 to 10,000"),
        ("no.such.setting", 1, "no setting called"),
    ]


def test_bad_values_are_refused_and_change_nothing(ctx):
    for name, value, message in BAD_VALUES:
        with pytest.raises(ParameterError, match=message):
            set_parameter(name, value, actor_id=None, reason="Try it", now=NOW)
    assert parameter_history() == []


def test_a_change_needs_a_reason(ctx):
    with pytest.raises(ParameterError, match="Say why"):
        set_parameter("conversion.epoch_days", 14, actor_id=None, reason="   ", now=NOW)
    assert get_parameter("conversion.epoch_days") == 7


def test_typed_values_parse_tokens_to_base_units_and_refuse_finer_fractions(ctx):
    assert parameters.parse_value("conversion.tokens_per_1000_points", "0.5") == TOKEN_UNIT // 2
    assert parameters.parse_value("conversion.epoch_days", "14") == 14
    assert parameters.parse_value("revenue.split", '{"a": 1}') == {"a": 1}
    for text in ("-1", "0.0000001", "abc"):
        with pytest.raises(ParameterError):
            parameters.parse_value("conversion.tokens_per_1000_points", text)


def test_the_next_reward_uses_a_changed_reward_rate(ctx, tmp_path):
    pack = make_pack(tmp_path, items=3, reward_points=10, reward_xp=6, difficulty="intermediate")
    member = make_user()
    lease = leases.lease_next_item(member, pack.id, NOW)
    first = submissions.submit_answer(member, lease.id, {"labels": ["pos"]}, now=NOW + timedelta(seconds=5))
    assert (first.points, first.xp) == (15, 9)  # the intermediate difficulty's 1.5×, as before the store

    set_parameter("reward.rate.text_classification", 20000, actor_id=None, reason="Double text rewards", now=NOW)
    lease = leases.lease_next_item(member, pack.id, NOW + timedelta(seconds=10))
    second = submissions.submit_answer(member, lease.id, {"labels": ["neg"]}, now=NOW + timedelta(seconds=15))
    assert (second.points, second.xp) == (30, 18)


def test_another_processs_change_is_seen_once_its_new_version_is_in_redis(ctx, redis_conn):
    from sqlalchemy import update

    from sapien.economy.models import Parameter
    from sapien.extensions import db

    admin = make_user(role="admin")
    assert get_parameter("conversion.auto_stake_bp") == 2000
    before = redis_conn.get(parameters._version_key())
    set_parameter("conversion.auto_stake_bp", 2500, actor_id=admin, reason="More skin in the game", now=NOW)
    assert redis_conn.get(parameters._version_key()) not in (None, before)  # every process reads the change
    parameters.forget_cached_parameters()
    assert get_parameter("conversion.auto_stake_bp") == 2500  # read into this process's copy
    # Another process's change: its row, committed, then (after its commit) a new version.
    db.session.execute(update(Parameter).where(Parameter.name == "conversion.auto_stake_bp").values(value=3000))
    db.session.commit()
    parameters.forget_cached_parameters()
    assert get_parameter("conversion.auto_stake_bp") == 2500  # the next session: the copy, whose version still holds
    redis_conn.set(parameters._version_key(), "another process's change")
    parameters.forget_cached_parameters()
    assert get_parameter("conversion.auto_stake_bp") == 3000



def test_a_signed_in_request_fetches_the_settings_version_in_its_one_round_trip(ctx, redis_conn):
    from flask import session
    from sqlalchemy import update

    from sapien import member_cache
    from sapien.economy.models import Parameter
    from sapien.extensions import db

    assert parameters._version_key() not in member_cache.keys_to_prefetch()  # signed out: nothing is fetched
    session["_user_id"] = f"{make_user()}:1"
    assert parameters._version_key() in member_cache.keys_to_prefetch()
    set_parameter("conversion.auto_stake_bp", 2500, actor_id=make_user(role="admin"), reason="More skin in the game", now=NOW)
    assert get_parameter("conversion.auto_stake_bp") == 2500  # this process's copy, under the version in Redis
    db.session.execute(update(Parameter).where(Parameter.name == "conversion.auto_stake_bp").values(value=3000))
    db.session.commit()
    parameters.forget_cached_parameters()
    # The request's pipeline brought a newer version than the copy's (another process changed a setting):
    # the read goes by it, without asking Redis again.
    member_cache.keep_prefetched([parameters._version_key()], [b"fetched-with-the-request"])
    assert get_parameter("conversion.auto_stake_bp") == 3000
