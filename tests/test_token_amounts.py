"""Token amounts as people type and read them: one parser and one formatter for every form and page, in
the reader's number format, exact to the token's six decimals."""

from __future__ import annotations

import pytest

from sapien.i18n import TOKEN_UNIT, TokenAmountError, format_tokens, parse_tokens


@pytest.mark.parametrize(("language", "typed", "units"), [
    ("en", "1.5", 3 * TOKEN_UNIT // 2),
    ("en", "1,234.5", 1_234_500_000),
    ("en", "0.000001", 1),
    ("fr", "1,5", 3 * TOKEN_UNIT // 2),
    ("fr", "1 234,5", 1_234_500_000),  # a plain space for the narrow no-break space French groups with
    ("id", "1.234,5", 1_234_500_000),
])
def test_amounts_parse_in_the_readers_format(app, language, typed, units):
    with app.test_request_context(headers={"Accept-Language": language}):
        assert parse_tokens(typed) == units


@pytest.mark.parametrize(("language", "typed", "message"), [
    ("en", "1,5", "Did you mean 15 tokens?"),  # a grouping comma in the wrong place is not read as fifteen
    ("id", "1.5", "15"),
    ("en", "-1", "cannot be negative"),
    ("en", "0.0000001", "at most 6 decimal places"),
    ("en", "twelve", "like 12.5"),
    ("en", "NaN", "like 12.5"),
    ("en", "", "like 12.5"),
])
def test_what_is_not_an_amount_is_refused_with_a_reason(app, language, typed, message):
    with app.test_request_context(headers={"Accept-Language": language}), pytest.raises(TokenAmountError, match=message):
        parse_tokens(typed)


def test_amounts_are_shown_exactly_in_the_readers_format(app):
    with app.test_request_context():
        assert (format_tokens(3 * TOKEN_UNIT // 2), format_tokens(1), format_tokens(1_234_567_891_234)) == ("1.5", "0.000001", "1,234,567.891234")
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert format_tokens(3 * TOKEN_UNIT // 2) == "1,5"
    with app.app_context():  # a job or the command line: plain English digits
        assert format_tokens(-2 * TOKEN_UNIT) == "-2"
