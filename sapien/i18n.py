"""Language and time zone: chosen per member, defaulting from the browser; dates shown locally."""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, dates, numbers
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_locale, get_timezone, get_translations, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from sapien.database import as_utc
from sapien.errors import DomainError
from sapien.extensions import babel

LANGUAGE_COOKIE = "sapien_lang"


def select_locale() -> str:
    return request_language()[0]


def select_timezone() -> str:
    return request_language()[1]


def request_language() -> tuple[str, str]:
    """(language code, time zone name) for this request, chosen once: the member's own, else the
    language cookie or the browser's, and UTC. Flask-Babel asks for them through its selectors, the
    page cache through this; both get the same answer without choosing again."""
    if not has_request_context():  # CLI commands and jobs speak the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"], "UTC"
    chosen = g.get("_sapien_language")
    if chosen is None:
        chosen = g._sapien_language = (_choose_locale(), _choose_timezone())
    return chosen


def _choose_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    user = current_user._get_current_object()
    if user.is_authenticated and user.locale in languages:
        return user.locale
    cookie = request.cookies.get(LANGUAGE_COOKIE)
    if cookie in languages:
        return cookie
    return request.accept_languages.best_match(list(languages)) or current_app.config["BABEL_DEFAULT_LOCALE"]


def _choose_timezone() -> str:
    user = current_user._get_current_object()
    return user.timezone if user.is_authenticated and user.timezone else "UTC"


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The named time zone, or UTC for an empty or unknown name (a stored zone the system lost)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@cache
def timezone_names() -> list[str]:
    return sorted(name for name in available_timezones() if "/" in name or name == "UTC")


def is_valid_timezone(name: str) -> bool:
    return name in set(timezone_names())


UTC_NAME = _l("Coordinated Universal Time (UTC)")


@cache
def timezone_choices(locale: str) -> list[tuple[str, str]]:
    """(IANA id, name in the language) for every zone, in alphabetical order of the names: "Paris (France) —
    heure d’Europe centrale" for fr. The id stays the value a form sends."""
    choices = [(name, timezone_label(name, locale)) for name in timezone_names()]
    return sorted(choices, key=lambda choice: (choice[0] != "UTC", _sort_key(choice[1])))


def timezone_label(name: str, locale: str) -> str:
    if name == "UTC":
        return str(UTC_NAME) if has_request_context() else name
    zone = dates.get_timezone(name)
    # Babel falls back on the id for a city it has no name for ("Argentina/Buenos_Aires"): keep its last part.
    city = dates.get_timezone_location(zone, locale=locale, return_city=True).rsplit("/", 1)[-1]
    territory = dates.get_global("zone_territories").get(name)
    country = Locale.parse(locale).territories.get(territory, "") if territory not in (None, "001", "ZZ") else ""
    place = f"{city} ({country})" if country and country != city else city
    generic = dates.get_timezone_name(zone, locale=locale)
    # A zone without a name of its own (Jakarta) is named after its place: say it once.
    return place if generic == dates.get_timezone_location(zone, locale=locale) else f"{place} — {generic}"


def _sort_key(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


# What each labeling task type is called (the values are sapien.labeling.models.TASK_TYPES): the pack form,
# marketplace and leaderboard filters and the boards all name a task type through this one mapping.
TASK_TYPE_NAMES = {
    "text_classification": _l("Text classification"),
    "text_cleaning": _l("Text cleaning"),
    "image_classification": _l("Image classification"),
    "bounding_boxes": _l("Bounding boxes"),
    "audio_transcription": _l("Audio transcription"),
}


def task_type_name(task_type: str) -> str:
    name = TASK_TYPE_NAMES.get(task_type)
    return str(name) if name else task_type.replace("_", " ").capitalize()


CURRENCY_NAMES = {
    "points": _l("points"),
    "xp": _l("XP"),
    "token": _l("tokens"),
    "stake": _l("staked tokens"),
    "partner": _l("partner tokens"),
}
# How each kind of ledger entry reads in the member's activity list.
ENTRY_KIND_LABELS = {
    "arena:clash": _l("Guild clash points"),
    "arena:clash-pot": _l("Guild clash winnings (the entry fees)"),
    "arena:clash-prize": _l("Guild clash prize"),
    "arena:fee": _l("Arena entry fee"),
    "arena:pot": _l("Arena winnings (the entry fees)"),
    "arena:prize": _l("Arena prize"),
    "arena:stump": _l("Arena: an item that stumped the model"),
    "conversion": _l("Points converted to tokens"),
    "demo_history": _l("Earlier activity"),
    "revenue": _l("Revenue share"),
    "slash": _l("Stake slashed by a moderator"),
    "stake": _l("Tokens staked"),
    "unstake": _l("Stake released"),
    "signup_bonus": _l("Welcome bonus"),
    "quest_reward": _l("Quest reward"),
    "reward_reversal": _l("Reward taken back (earned by work a moderator reversed)"),
    "streak_freeze": _l("Streak freeze bought"),
    "withdrawal": _l("Withdrawn to your wallet"),
    "withdrawal_refund": _l("Withdrawal returned (the payout failed)"),
}
# Kinds that name a task type after a colon ("labeling:audio_transcription"), read with the type's label.
ENTRY_KIND_PREFIXES = {
    "labeling": lambda task: task,  # a labeling reward reads as its task type alone: "Audio transcription"
    "labeling-reversal": lambda task: gettext("Reversed: %(task)s", task=task),
}


def country_name(code: str | None) -> str:
    if not code:
        return ""
    return Locale.parse(str(get_locale())).territories.get(code, code)


def entry_kind_label(kind: str) -> str:
    label = ENTRY_KIND_LABELS.get(kind)
    if label:
        return str(label)
    prefix, _colon, task_type = kind.partition(":")
    if task_type and prefix in ENTRY_KIND_PREFIXES:
        return ENTRY_KIND_PREFIXES[prefix](task_type_name(task_type))
    return kind.replace("_", " ").capitalize()


def request_i18n() -> tuple:
    """(translations, locale, time zone) for this request, looked up once.

    Flask-Babel resolves all three through context proxies on every call; a page makes hundreds.
    """
    cached = g.get("_sapien_i18n")
    if cached is None:
        cached = g._sapien_i18n = (get_translations(), get_locale(), get_timezone())
    return cached


def forget_request_i18n() -> None:
    """After the member switches language mid-request, choose the language and look the catalogue up afresh."""
    g.pop("_sapien_i18n", None)
    g.pop("_sapien_language", None)


def format_number(value) -> str:
    # A whole number below 1,000 reads the same in every site language (Latin digits, nothing to group): most
    # figures on a page (a reward, a count) need none of babel's pattern work. A language written with other
    # digits would need this to go.
    if type(value) is int and 0 <= value < 1000:
        return str(value)
    return numbers.format_decimal(value, locale=request_i18n()[1])


def format_decimal(value, fmt: str | None = None) -> str:
    return numbers.format_decimal(value, format=fmt, locale=request_i18n()[1])


def format_percent(value, fmt: str | None = None) -> str:
    return numbers.format_percent(value, format=fmt, locale=request_i18n()[1])


def format_datetime(value, fmt: str = "medium") -> str:
    if not value:
        return ""
    _translations, locale, zone = request_i18n()
    return dates.format_datetime(value, fmt, tzinfo=zone, locale=locale)


def format_date(value, fmt: str = "medium") -> str:
    if not value:
        return ""
    _translations, locale, zone = request_i18n()
    return dates.format_date(value.astimezone(zone) if hasattr(value, "astimezone") else value, fmt, locale=locale)


def format_duration(value) -> str:
    """A timedelta as the reader says it ("23 minutes", "2 hours"), to the minute."""
    if value is None:
        return ""
    return dates.format_timedelta(value, threshold=1, granularity="minute", locale=request_i18n()[1])


# Tokens count in base units of 10**-TOKEN_DECIMALS (the contracts' `decimals()`): six, so that a 64-bit
# ledger amount holds 9.2 trillion tokens (eighteen would stop at 9.2).
TOKEN_DECIMALS = 6
TOKEN_UNIT = 10**TOKEN_DECIMALS
_TOKEN_PATTERN = "#,##0." + "#" * TOKEN_DECIMALS  # every decimal a base unit has, none it has not


class TokenAmountError(DomainError):
    """A typed token amount that is not one: not a number, negative, or finer than a base unit."""


def _reader_locale():
    return request_i18n()[1] if has_request_context() else Locale("en")


def format_tokens(units: int) -> str:
    """Base units as tokens in the reader's number format: 1,500,000 → "1.5" ("1,5" in French), exactly."""
    return numbers.format_decimal(Decimal(int(units)).scaleb(-TOKEN_DECIMALS), format=_TOKEN_PATTERN, locale=_reader_locale())


def parse_tokens(text: str) -> int:
    """Tokens as a member types them, in their number format ("1,234.5"; "1 234,5" in French) → base units.

    Strict about grouping, so that "1,5" typed in English is refused (with what it would mean) rather than
    read as fifteen. Refuses negatives and fractions finer than the token's precision.
    """
    locale = _reader_locale()
    text = str(text or "").strip()
    group = numbers.get_group_symbol(locale)
    if group.isspace():  # French groups with a narrow no-break space; people type a plain one
        text = "".join(group if character.isspace() else character for character in text)
    try:
        amount = numbers.parse_decimal(text, locale=locale, strict=True)
    except numbers.NumberFormatError as error:
        if error.suggestions:
            raise TokenAmountError(_l("Did you mean %(suggestion)s tokens? Amounts are written like %(example)s.",
                                      suggestion=error.suggestions[0], example=format_tokens(1_234_500_000))) from None
        raise TokenAmountError(_l("Enter an amount of tokens, like %(example)s.", example=format_tokens(12_500_000))) from None
    if not amount.is_finite():
        raise TokenAmountError(_l("Enter an amount of tokens, like %(example)s.", example=format_tokens(12_500_000)))
    if amount < 0:
        raise TokenAmountError(_l("Amounts cannot be negative."))
    units = amount.scaleb(TOKEN_DECIMALS)
    if units != units.to_integral_value():
        raise TokenAmountError(_l("Tokens have at most %(places)s decimal places.", places=TOKEN_DECIMALS))
    return int(units)


def format_money(amount: int, currency: str) -> str:
    """Points and XP are whole numbers; tokens are shown from their base units (TOKEN_UNIT)."""
    if currency in ("token", "stake", "partner"):
        return format_tokens(amount)
    return numbers.format_decimal(amount, locale=request_i18n()[1])


def init_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_i18n()[0].ugettext(s),
        ngettext=lambda s, p, n: request_i18n()[0].ungettext(s, p, n),
        pgettext=lambda c, s: request_i18n()[0].upgettext(c, s),
        npgettext=lambda c, s, p, n: request_i18n()[0].unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.filters["number"] = format_number
    app.jinja_env.filters["decimal"] = format_decimal
    app.jinja_env.filters["percent"] = format_percent
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.filters["utc"] = as_utc  # a stored time to compare with `now` (SQLite hands back naive ones)
    app.jinja_env.filters["task_type"] = task_type_name
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.filters["country_name"] = country_name
    app.jinja_env.filters["currency_name"] = lambda code: str(CURRENCY_NAMES.get(code, code))
    app.jinja_env.filters["entry_kind"] = entry_kind_label
