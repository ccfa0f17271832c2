"""A snapshot's config: what moderators set in the browser or write as JSON (docs/airdrops.md).

`parse_config(data, now)` checks everything and returns a `SnapshotConfig` or raises `ConfigError` with
every problem found, each a translatable sentence naming the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from sapien.i18n import TOKEN_DECIMALS

# The published criteria, in the order pages show them.
CRITERIA = ("points", "active_days", "gold_accuracy", "reputation", "special_tasks", "recognized_guild", "wallet_tx_count", "wallet_age_days")
CRITERION_LABELS = {
    "points": _l("Points"),
    "active_days": _l("Active days"),
    "gold_accuracy": _l("Gold accuracy (%)"),
    "reputation": _l("Reputation"),
    "special_tasks": _l("Special tasks completed"),
    "recognized_guild": _l("Member of a recognized guild"),
    "wallet_tx_count": _l("Wallet transactions"),
    "wallet_age_days": _l("Wallet age (days)"),
}
CHAIN_CRITERIA = ("wallet_tx_count", "wallet_age_days")
MAX_WEIGHT = 1000
MAX_TOTAL_TOKENS = 10**12


class ConfigError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = [str(problem) for problem in problems]


@dataclass(frozen=True)
class SnapshotConfig:
    name: str
    as_of: datetime
    total_tokens: str  # a decimal string of whole tokens, e.g. "100000" or "2500.5"
    weights: dict[str, int]  # criterion → weight (only criteria with a weight > 0 score)
    minimums: dict[str, int] = field(default_factory=dict)  # criterion → minimum value to be eligible
    floor_tokens: str = "0"
    cap_tokens: str = "0"  # 0: no cap
    sqrt: bool = False

    @property
    def total_amount(self) -> int:
        return tokens_to_units(self.total_tokens)

    @property
    def floor_amount(self) -> int:
        return tokens_to_units(self.floor_tokens)

    @property
    def cap_amount(self) -> int:
        return tokens_to_units(self.cap_tokens)

    @property
    def uses_chain(self) -> bool:
        return any(self.weights.get(name, 0) > 0 or self.minimums.get(name, 0) > 0 for name in CHAIN_CRITERIA)

    def to_json(self) -> dict:
        data = asdict(self)
        data["as_of"] = self.as_of.astimezone(UTC).isoformat()
        return data


def tokens_to_units(tokens: str) -> int:
    return int(Decimal(tokens) * 10**TOKEN_DECIMALS)


def units_to_tokens(units: int | str) -> str:
    value = Decimal(int(units)) / 10**TOKEN_DECIMALS
    text = format(value.normalize(), "f")
    return text


def _tokens(value, label, problems: list, *, allow_zero: bool) -> str:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        problems.append(_l("%(field)s is not a number.", field=label))
        return "0"
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        problems.append(_l("%(field)s must be more than zero.", field=label) if not allow_zero else _l("%(field)s cannot be negative.", field=label))
        return "0"
    if amount > MAX_TOTAL_TOKENS or amount != amount.quantize(Decimal(1).scaleb(-TOKEN_DECIMALS)):
        problems.append(_l("%(field)s is out of range.", field=label))
        return "0"
    return format(amount.normalize(), "f")


def _whole(value, label, problems: list) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        problems.append(_l("%(field)s must be a whole number.", field=label))
        return 0
    if number < 0:
        problems.append(_l("%(field)s cannot be negative.", field=label))
        return 0
    return number


def parse_as_of(value) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_config(data: dict, now: datetime) -> SnapshotConfig:
    """The checked config, or `ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([_l("The config must be a JSON object.")])
    problems: list = []
    name = str(data.get("name") or "").strip()[:120]
    if not name:
        problems.append(_l("Give the snapshot a name."))
    raw_as_of = data.get("as_of", "")
    # "now" is the run's own time, recorded in the stored config (so a re-run of the stored config reproduces it).
    as_of = now if str(raw_as_of).strip().lower() == "now" else parse_as_of(raw_as_of)
    if as_of is None:
        problems.append(_l("The as-of time is not a date and time (e.g. 2026-12-01T00:00:00Z)."))
    elif as_of > now:
        problems.append(_l("The as-of time is in the future: a snapshot can only look at what already happened."))
    total = _tokens(data.get("total_tokens", ""), _l("The total amount"), problems, allow_zero=False)
    weights: dict[str, int] = {}
    raw_weights = data.get("weights") or {}
    if not isinstance(raw_weights, dict):
        raw_weights = {}
        problems.append(_l("The weights must be an object of criterion: weight."))
    for key, value in raw_weights.items():
        if key not in CRITERIA:
            problems.append(_l("Unknown criterion: %(name)s.", name=str(key)[:40]))
            continue
        label = CRITERION_LABELS[key]
        try:
            weight = int(str(value).strip())
        except ValueError:
            problems.append(_l("The weight of %(field)s must be a whole number.", field=label))
            continue
        if weight < 0:
            problems.append(_l("The weight of %(field)s cannot be negative.", field=label))
        elif weight > MAX_WEIGHT:
            problems.append(_l("The weight of %(field)s is at most %(max)d.", field=label, max=MAX_WEIGHT))
        elif weight > 0:
            weights[key] = weight
    if not weights:
        problems.append(_l("Choose at least one criterion with a weight above zero."))
    minimums: dict[str, int] = {}
    raw_minimums = data.get("minimums") or {}
    for key, value in (raw_minimums.items() if isinstance(raw_minimums, dict) else []):
        if key not in CRITERIA:
            problems.append(_l("Unknown criterion: %(name)s.", name=str(key)[:40]))
            continue
        minimum = _whole(value, _l("The minimum of %(field)s", field=CRITERION_LABELS[key]), problems)
        if minimum > 0:
            minimums[key] = minimum
    floor = _tokens(data.get("floor_tokens", "0") or "0", _l("The floor"), problems, allow_zero=True)
    cap = _tokens(data.get("cap_tokens", "0") or "0", _l("The cap"), problems, allow_zero=True)
    if Decimal(cap) > 0 and Decimal(floor) > Decimal(cap):
        problems.append(_l("The floor cannot be above the cap."))
    if Decimal(floor) > Decimal(total) > 0:
        problems.append(_l("The floor cannot be above the total amount."))
    if problems:
        raise ConfigError(problems)
    return SnapshotConfig(
        name=name, as_of=as_of.astimezone(UTC), total_tokens=total, weights=dict(sorted(weights.items())),
        minimums=dict(sorted(minimums.items())), floor_tokens=floor, cap_tokens=cap, sqrt=bool(data.get("sqrt", False)),
    )
