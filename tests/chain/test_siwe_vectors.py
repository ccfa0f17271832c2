"""The EIP-4361 reference vectors (tests/chain/vectors, from spruceid/siwe) against our parser and verifier."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from sapien.chain.siwe import SiweError, SiweMessage, parse_message, parse_timestamp, verify

VECTORS = Path(__file__).parent / "vectors"
FIELD_NAMES = {"chainId": "chain_id", "issuedAt": "issued_at", "expirationTime": "expiration_time",
               "notBefore": "not_before", "requestId": "request_id"}


def load(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text())


def message_from(fields: dict) -> SiweMessage:
    known = {FIELD_NAMES.get(key, key): value for key, value in fields.items()
             if key not in ("signature", "time", "domainBinding", "matchNonce")}
    return SiweMessage(**known)


@pytest.mark.parametrize("name, case", load("parsing_positive").items())
def test_every_valid_message_parses_to_its_fields_and_prints_back_unchanged(name, case):
    message = parse_message(case["message"])
    for key, value in case["fields"].items():
        assert getattr(message, FIELD_NAMES.get(key, key)) == value, key
    assert message.text() == case["message"]


@pytest.mark.parametrize("name, text", load("parsing_negative").items())
def test_every_malformed_message_is_refused(name, text):
    with pytest.raises(SiweError):
        parse_message(text)


@pytest.mark.parametrize("name, case", load("verification_positive").items())
def test_every_valid_signature_verifies_at_its_time(name, case):
    now = parse_timestamp(case["time"]) if "time" in case else datetime.now(UTC)
    message = verify(message_from(case).text(), case["signature"], now=now)
    assert message.address == case["address"]


@pytest.mark.parametrize("name, case", load("verification_negative").items())
def test_every_bad_signature_or_binding_is_refused(name, case):
    now = parse_timestamp(case["time"]) if "time" in case else datetime.now(UTC)
    with pytest.raises(SiweError):
        verify(message_from(case).text(), case["signature"], now=now, domain=case.get("domainBinding"),
               nonce=case.get("matchNonce"))


@pytest.mark.parametrize("name, case", load("parsing_positive").items())
def test_every_valid_message_round_trips_through_a_fresh_key(name, case):
    account = Account.create()
    fields = {**case["fields"], "address": account.address}
    text = message_from(fields).text()
    signature = account.sign_message(encode_defunct(text=text)).signature.hex()
    assert verify(text, signature, now=parse_timestamp(fields["issuedAt"])).address == account.address
