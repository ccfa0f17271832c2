"""The parameter store: every economic setting, its default, its rules and its history.

A setting's value is its row in `economy_parameters` if it has one, else its default here; the database
is the truth. `get_parameter` takes all rows once per session (a request, a job) from this process's copy,
read again whenever a version in Redis says a change has committed since (see `_stored`); `set_parameter`
validates, locks the row, writes the new value and appends a `ParameterChange` (who, why, when and, for a
vote, which proposal) in one transaction, so the history is complete.

Rates and shares are basis points (10,000 = 100 % or 1×); token amounts are integer base units
(`TOKEN_UNIT` = one token). Labeling reads the reward rates through `events.reward_rate` (it sits below
economy), see `reward_rate_bp`.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from sqlalchemy import select

from sapien.database import after_commit, built_once, dialect_insert, unit_of_work
from sapien.economy.models import Parameter, ParameterChange
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT, TokenAmountError, format_tokens, parse_tokens
from sapien.labeling.models import DIFFICULTIES, TASK_TYPES
from sapien.member_cache import fetch_along, prefetched_value
from sapien.queue import redis_connection
from sapien.redis_keys import redis_key

BASIS = 10_000  # basis points in 100 % (or in a 1× multiplier)
KINDS = ("int", "basis_points", "token_amount", "json")
MAX_REASON = 500
log = logging.getLogger(__name__)
_CACHE = "economy_parameters"


class ParameterError(DomainError):
    """A bad value, an unknown setting or a change without a reason."""


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    kind: str  # "int" | "basis_points" | "token_amount" | "json"
    default: object
    description: LazyString
    validate: Callable[[object], None]


# --- validators -----------------------------------------------------------------------------------

def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(low: int, high: int) -> Callable[[object], None]:
    def validate(value: object) -> None:
        if not _is_int(value) or not low <= value <= high:
            raise ParameterError(_l("Enter a whole number from %(low)s to %(high)s.", low=f"{low:,}", high=f"{high:,}"))

    return validate


def _token_amount(low: int, high: int) -> Callable[[object], None]:
    def validate(value: object) -> None:
        if not _is_int(value) or not low <= value <= high:
            raise ParameterError(_l("Enter a token amount from %(low)s to %(high)s tokens.", low=format_tokens(low), high=format_tokens(high)))

    return validate


def _shares(keys: tuple[str, ...], *, sums_to_whole: bool) -> Callable[[object], None]:
    """A {key: basis points} object with exactly these keys, each 0–100 %, optionally adding up to 100 %."""

    def validate(value: object) -> None:
        if not isinstance(value, dict) or set(value) != set(keys):
            raise ParameterError(_l("Give a share for each of: %(keys)s.", keys=", ".join(keys)))
        if not all(_is_int(share) and 0 <= share <= BASIS for share in value.values()):
            raise ParameterError(_l("Each share is a whole number of basis points from 0 to 10,000."))
        if sums_to_whole and sum(value.values()) != BASIS:
            raise ParameterError(_l("The shares must add up to 100 %% (10,000 basis points); they add up to %(total)s.",
                                    total=f"{sum(value.values()):,}"))

    return validate


def _tiers(value: object) -> None:
    """Staking tiers: a list of {months, min_amount, multiplier_bp}, longer locks asking at least as much
    stake and paying at least as much."""
    message = _l("Tiers are a list of {\"months\": 1–60, \"min_amount\": token base units ≥ 0, \"multiplier_bp\": 10,000–50,000}.")
    if not isinstance(value, list) or not 1 <= len(value) <= 12:
        raise ParameterError(message)
    for tier in value:
        if not isinstance(tier, dict) or set(tier) != {"months", "min_amount", "multiplier_bp"}:
            raise ParameterError(message)
        months, amount, multiplier = tier["months"], tier["min_amount"], tier["multiplier_bp"]
        if not (_is_int(months) and 1 <= months <= 60 and _is_int(amount) and 0 <= amount <= LEDGER_MAX
                and _is_int(multiplier) and BASIS <= multiplier <= 5 * BASIS):
            raise ParameterError(message)
    months = [tier["months"] for tier in value]
    if months != sorted(set(months)):
        raise ParameterError(_l("List the tiers from the shortest lock to the longest, each lock once."))
    for shorter, longer in zip(value, value[1:], strict=False):
        if longer["multiplier_bp"] < shorter["multiplier_bp"] or longer["min_amount"] < shorter["min_amount"]:
            raise ParameterError(_l("A longer lock asks at least as much stake and pays at least as much as a shorter one."))


# --- the catalogue --------------------------------------------------------------------------------

# The ledger keeps amounts in BIGINT base units (10**-6 of a token), so one balance holds at most about
# 9.2 trillion tokens (docs/economy.md).
LEDGER_MAX = 2**63 - 1
DEFAULT_TIERS = [
    {"months": 1, "min_amount": TOKEN_UNIT // 10, "multiplier_bp": 10_500},
    {"months": 3, "min_amount": TOKEN_UNIT // 4, "multiplier_bp": 11_500},
    {"months": 6, "min_amount": TOKEN_UNIT // 2, "multiplier_bp": 13_000},
    {"months": 12, "min_amount": TOKEN_UNIT, "multiplier_bp": 15_000},
]
DEFAULT_DIFFICULTY_BP = {"beginner": 10_000, "intermediate": 15_000, "advanced": 20_000, "expert": 30_000}
SLASH_SEVERITIES = ("warning", "moderate", "severe")
REVENUE_PARTS = ("contributors", "stakers", "treasury")


def _specs() -> list[ParameterSpec]:
    specs = [
        ParameterSpec("conversion.tokens_per_1000_points", "token_amount", TOKEN_UNIT // 10,
                      _l("Tokens a member gets for 1,000 points at conversion."), _token_amount(1, TOKEN_UNIT)),
        ParameterSpec("conversion.auto_stake_bp", "basis_points", 2_000,
                      _l("Share of each conversion staked automatically (on the shortest lock)."), _whole(0, BASIS)),
        ParameterSpec("conversion.epoch_days", "int", 7, _l("Length of a conversion epoch, in days."), _whole(1, 90)),
        ParameterSpec("staking.tiers", "json", DEFAULT_TIERS,
                      _l("Staking tiers: lock months, the stake a tier needs and the reward multiplier it gives."), _tiers),
        ParameterSpec("staking.cooldown_days", "int", 7, _l("Days between asking to unstake and getting the tokens back."),
                      _whole(0, 365)),
        ParameterSpec("staking.priority_reserve_items", "int", 0,
                      _l("When a pack has this many open items or fewer, only staked members may claim them (0: off)."),
                      _whole(0, 10_000)),
        ParameterSpec("slashing.shares", "json", {"warning": 0, "moderate": 2_500, "severe": 10_000},
                      _l("Share of a member's stake slashed for confirmed fraud, by severity."),
                      _shares(SLASH_SEVERITIES, sums_to_whole=False)),
        ParameterSpec("revenue.split", "json", {"contributors": 7_000, "stakers": 2_000, "treasury": 1_000},
                      _l("How an enterprise payment splits between contributors, stakers and the treasury."),
                      _shares(REVENUE_PARTS, sums_to_whole=True)),
    ]
    # Governance's own settings live here too, so votes can change them like any other (docs/governance.md):
    # a vote runs 72 hours; 10 % of the frozen power must take part; a change passes with more than 50 % of
    # the power cast for or against; a passed change waits 48 hours; a member proposes from level 3,
    # reputation 550 and 1 staked token.
    specs += [
        ParameterSpec("governance.voting_period_hours", "int", 72, _l("How long a proposal is open for voting, in hours."),
                      _whole(1, 24 * 60)),
        ParameterSpec("governance.quorum_bp", "basis_points", 1_000,
                      _l("Share of the frozen voting power that must take part for a vote to count."), _whole(0, BASIS)),
        ParameterSpec("governance.pass_threshold_bp", "basis_points", 5_000,
                      _l("A proposal passes with more than this share of the power cast for or against."), _whole(0, BASIS - 1)),
        ParameterSpec("governance.timelock_hours", "int", 48, _l("How long a passed change waits before it applies, in hours."),
                      _whole(0, 24 * 60)),
        ParameterSpec("governance.proposal_min_level", "int", 3, _l("The level a member needs to propose."), _whole(1, 100)),
        ParameterSpec("governance.proposal_min_reputation", "int", 550, _l("The reputation a member needs to propose."),
                      _whole(0, 1000)),
        ParameterSpec("governance.proposal_min_stake", "token_amount", TOKEN_UNIT, _l("The stake a member needs to propose."),
                      _token_amount(0, 10**6 * TOKEN_UNIT)),
    ]
    for difficulty in DIFFICULTIES:
        specs.append(ParameterSpec(f"reward.difficulty.{difficulty}", "basis_points", DEFAULT_DIFFICULTY_BP[difficulty],
                                   _l("Reward multiplier of %(difficulty)s packs.", difficulty=difficulty), _whole(0, 10 * BASIS)))
    for task_type in TASK_TYPES:
        specs.append(ParameterSpec(f"reward.rate.{task_type}", "basis_points", BASIS,
                                   _l("Reward rate of %(task_type)s tasks.", task_type=task_type), _whole(0, 10 * BASIS)))
    return specs


PARAMETERS: dict[str, ParameterSpec] = {spec.name: spec for spec in _specs()}


# --- reading --------------------------------------------------------------------------------------

# Every answer reads the reward rates, and they change only by `set_parameter`. So each process keeps the
# stored values in memory under a version kept in Redis, which `set_parameter` changes once its change has
# committed: a process sees the change from its next request or job on. The version is read before the
# values, so values read before a change are kept under the version that change replaced. The version
# lives VERSION_SECONDS (a change whose new version Redis missed is seen within that time); with Redis
# down every session reads the table.
VERSION_SECONDS = 300
_process_cache: tuple[bytes, dict[str, object]] | None = None


@fetch_along  # most signed-in requests read the settings (every answer does): no round trip of their own
def _version_key() -> str:
    return redis_key("economy:parameters:version")


def _stored() -> dict[str, object]:
    """The stored values, read once per session (a request, a job): from this process's cache while the
    version in Redis says it is current, else from the table."""
    session = db.session()
    cached = session.info.get(_CACHE)
    if cached is None:
        cached = session.info[_CACHE] = _current_stored()
    return cached


def _current_stored() -> dict[str, object]:
    global _process_cache

    try:
        connection = redis_connection()
        version = prefetched_value(_version_key()) or connection.get(_version_key())
        if version is None:  # first use, expired, or Redis was flushed: start a version (another process may win)
            connection.set(_version_key(), uuid4().hex, nx=True, ex=VERSION_SECONDS)
            version = connection.get(_version_key())
    except RedisError:
        return _read_stored()
    cached = _process_cache
    if cached is not None and version is not None and cached[0] == version:
        return cached[1]
    stored = _read_stored()
    if version is not None:
        _process_cache = (version, stored)
    return stored


def _read_stored() -> dict[str, object]:
    return dict(db.session.execute(_stored_statement()).all())


@built_once
def _stored_statement():
    return select(Parameter.name, Parameter.value)


def forget_cached_parameters() -> None:
    """Drop this session's cached values (after a change, or to see another process's change)."""
    db.session().info.pop(_CACHE, None)


def _announce_change() -> None:
    """After a change commits: every process reads the table again (this one at once)."""
    global _process_cache

    _process_cache = None
    try:
        redis_connection().set(_version_key(), uuid4().hex, ex=VERSION_SECONDS)
    except RedisError as error:
        log.warning("economy parameters' version not changed (Redis unavailable); other processes see the change"
                    " within %s s: %s", VERSION_SECONDS, error)


def _spec(name: str) -> ParameterSpec:
    spec = PARAMETERS.get(name)
    if spec is None:
        raise ParameterError(_l("There is no setting called %(name)s.", name=name))
    return spec


def get_parameter(name: str) -> object:
    """The setting's current value (a copy: changing it changes nothing)."""
    spec = _spec(name)
    stored = _stored()
    return copy.deepcopy(stored.get(name, spec.default))


def all_parameters() -> dict[str, object]:
    return {name: get_parameter(name) for name in PARAMETERS}


def reward_rate_bp(task_type: str, difficulty: str) -> int:
    """A reward's multiplier in basis points: its difficulty's times its task type's (10,000 = 1×)."""
    stored = _stored()

    def value(name: str) -> int:
        return int(stored.get(name, PARAMETERS[name].default))

    return value(f"reward.difficulty.{difficulty}") * value(f"reward.rate.{task_type}") // BASIS


# --- changing -------------------------------------------------------------------------------------

def set_parameter(name: str, value: object, *, actor_id: int | None, reason: str, now: datetime,
                  proposal_id: int | None = None) -> ParameterChange:
    """Validate and store a new value with its history row, in one transaction (a vote's change names its proposal)."""
    spec = _spec(name)
    reason = (reason or "").strip()
    if not reason:
        raise ParameterError(_l("Say why the setting changes."), field="reason")
    if len(reason) > MAX_REASON:
        raise ParameterError(_l("Keep the reason under %(count)s characters.", count=MAX_REASON), field="reason")
    value = json.loads(json.dumps(value))  # exactly what the JSON column will give back
    spec.validate(value)
    with unit_of_work() as session:
        forget_cached_parameters()
        # The row exists (with the default) before it is locked, so two changes at once take turns.
        session.execute(dialect_insert(Parameter).values(name=name, value=spec.default, updated_at=now)
                        .on_conflict_do_nothing(index_elements=[Parameter.name]))
        row = session.scalar(select(Parameter).where(Parameter.name == name).with_for_update()
                             .execution_options(populate_existing=True))
        change = ParameterChange(name=name, old_value=row.value, new_value=value, actor_id=actor_id, reason=reason,
                                 at=now, proposal_id=proposal_id)
        row.value, row.updated_at = value, now
        session.add(change)
        session.flush()
        after_commit(_announce_change)
    forget_cached_parameters()
    return change


def parameter_history(name: str | None = None, *, limit: int = 200) -> list[ParameterChange]:
    """Changes, newest first (of one setting, or of all)."""
    query = select(ParameterChange)
    if name is not None:
        _spec(name)
        query = query.where(ParameterChange.name == name)
    return list(db.session.scalars(query.order_by(ParameterChange.at.desc(), ParameterChange.id.desc()).limit(limit)))


# --- form input -----------------------------------------------------------------------------------

def parse_value(name: str, text: str) -> object:
    """An admin's typed value for this setting: whole numbers, tokens (decimal), or JSON."""
    spec = _spec(name)
    text = (text or "").strip()
    if spec.kind == "token_amount":
        try:
            return parse_tokens(text)
        except TokenAmountError as error:
            raise ParameterError(error.message) from None
    if spec.kind in ("int", "basis_points"):
        try:
            return int(text.replace(",", "").replace("_", ""))
        except ValueError:
            raise ParameterError(_l("Enter a whole number.")) from None
    try:
        return json.loads(text)
    except ValueError:
        raise ParameterError(_l("Enter valid JSON.")) from None


def display_value(name: str, value: object) -> str:
    spec = _spec(name)
    if spec.kind == "token_amount" and _is_int(value):
        return format_tokens(value)
    if spec.kind in ("int", "basis_points"):
        return str(value)
    return json.dumps(value, sort_keys=False)
