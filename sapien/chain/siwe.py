"""Sign-In with Ethereum (EIP-4361) messages: build, parse strictly, verify the signer.

The parser follows the EIP's ABNF line by line (fields in their order, nothing left over): the reference
Python implementation pins web3 < 8 and eth-account < 0.14, older than ours, so the message is parsed
here and the signature checked with eth-account (`encode_defunct` + `Account.recover_message`, the
EIP-191 `personal_sign` a wallet makes). The spec's own vectors run in tests/chain/test_siwe_vectors.py.

Everything here is pure: no database, no request. `wallets.py` adds the server's own rules (its nonce,
its domain and URI, its chains).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address
from flask_babel import lazy_gettext as _l

from sapien.errors import DomainError

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"

# RFC 3986 pieces, as the ABNF names them.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}"
_IP_LITERAL = r"\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[" + _UNRESERVED + _SUB_DELIMS + r":]+\]"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_HOST = rf"(?:{_IP_LITERAL}|{_IPV4}|{_REG_NAME})"
AUTHORITY = re.compile(rf"(?:{_USERINFO}@)?{_HOST}(?::[0-9]*)?")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# Everything after the scheme of an absolute URI: only characters RFC 3986 allows, % only as an escape.
_URI_REST = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@]|{_PCT})*")
_PCHAR = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})*")
# A statement is one line of RFC 3986 reserved / unreserved characters and spaces (so, plain ASCII).
STATEMENT = re.compile(rf"[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@ ]*")
ADDRESS = re.compile(r"0x[0-9A-Fa-f]{40}")
NONCE = re.compile(r"[A-Za-z0-9]{8,}")
CHAIN_ID = re.compile(r"[0-9]+")
DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
SIGNATURE = re.compile(r"(?:0x)?[0-9A-Fa-f]{130}")


class SiweError(DomainError):
    """A sign-in message or signature that cannot be accepted; the message says why, for the member."""


MALFORMED = _l("That is not a Sign-In with Ethereum message. Sign the message this page shows, unchanged.")


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    version: str = "1"
    statement: str | None = None
    scheme: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The message exactly as EIP-4361 lays it out (the text the wallet signs)."""
        prefix = f"{self.scheme}://{self.domain}" if self.scheme else self.domain
        lines = [prefix + HEADER_SUFFIX, self.address, ""]
        lines += [self.statement, ""] if self.statement is not None else [""]
        lines += [
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)

    @property
    def issued_at_time(self) -> datetime:
        return parse_timestamp(self.issued_at)

    @property
    def expiration(self) -> datetime | None:
        return parse_timestamp(self.expiration_time) if self.expiration_time is not None else None

    @property
    def not_before_time(self) -> datetime | None:
        return parse_timestamp(self.not_before) if self.not_before is not None else None


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as wallets and the reference implementation write it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 date-time (the ABNF's), or SiweError: no other date formats, no impossible dates."""
    match = DATE_TIME.fullmatch(value)
    if not match:
        raise SiweError(MALFORMED)
    year, month, day, hour, minute, second, fraction, zulu, sign, offset_h, offset_m = match.groups()
    try:
        offset = timedelta(0) if zulu else int(sign + "1") * timedelta(hours=int(offset_h), minutes=int(offset_m))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                        tzinfo=timezone(offset))
    except ValueError as error:  # 31 February, hour 25, an offset past a day
        raise SiweError(MALFORMED) from error


def is_uri(value: str) -> bool:
    """An absolute RFC 3986 URI: a scheme, then only URI characters, and a valid authority after `//`."""
    scheme, colon, rest = value.partition(":")
    if not colon or not SCHEME.fullmatch(scheme) or not _URI_REST.fullmatch(rest):
        return False
    if rest.startswith("//"):
        authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
        return bool(AUTHORITY.fullmatch(authority))
    return True


def parse_message(text: str) -> SiweMessage:
    """Parse an EIP-4361 message strictly (every field in its place, in its order), or raise SiweError."""
    lines = text.split("\n")
    position = 0

    def take(prefix: str, optional: bool = False) -> str | None:
        nonlocal position
        if position < len(lines) and lines[position].startswith(prefix):
            position += 1
            return lines[position - 1][len(prefix):]
        if optional:
            return None
        raise SiweError(MALFORMED)

    if len(lines) < 9 or not lines[0].endswith(HEADER_SUFFIX):
        raise SiweError(MALFORMED)
    origin = lines[0][: -len(HEADER_SUFFIX)]
    scheme = None
    if "://" in origin:
        scheme, origin = origin.split("://", 1)
        if not SCHEME.fullmatch(scheme):
            raise SiweError(MALFORMED)
    if not origin or not AUTHORITY.fullmatch(origin):
        raise SiweError(MALFORMED)
    address = lines[1]
    if not ADDRESS.fullmatch(address) or not is_checksum_address(address):
        raise SiweError(_l("The wallet address in the message is not written with its EIP-55 checksum."))
    if lines[2] != "":
        raise SiweError(MALFORMED)
    if lines[3] == "":
        statement, position = None, 4
    else:
        statement, position = lines[3], 5
        if lines[4] != "" or not STATEMENT.fullmatch(statement):
            raise SiweError(MALFORMED)
    uri = take("URI: ")
    version = take("Version: ")
    chain_id = take("Chain ID: ")
    nonce = take("Nonce: ")
    issued_at = take("Issued At: ")
    expiration_time = take("Expiration Time: ", optional=True)
    not_before = take("Not Before: ", optional=True)
    request_id = take("Request ID: ", optional=True)
    resources: list[str] = []
    if take("Resources:", optional=True) is not None:
        if lines[position - 1] != "Resources:":
            raise SiweError(MALFORMED)
        while position < len(lines):
            resources.append(take("- "))
    if position != len(lines):
        raise SiweError(MALFORMED)
    if not is_uri(uri) or not all(is_uri(resource) for resource in resources):
        raise SiweError(MALFORMED)
    if version != "1":
        raise SiweError(_l("Only version 1 of Sign-In with Ethereum messages is accepted."))
    if not CHAIN_ID.fullmatch(chain_id) or not NONCE.fullmatch(nonce):
        raise SiweError(MALFORMED)
    if request_id is not None and not _PCHAR.fullmatch(request_id):
        raise SiweError(MALFORMED)
    for stamp in (issued_at, expiration_time, not_before):
        if stamp is not None:
            parse_timestamp(stamp)
    return SiweMessage(
        domain=origin, address=address, uri=uri, chain_id=int(chain_id), nonce=nonce, issued_at=issued_at,
        version=version, statement=statement, scheme=scheme, expiration_time=expiration_time,
        not_before=not_before, request_id=request_id, resources=resources,
    )


def recover_signer(text: str, signature: str) -> str:
    """The checksummed address whose key made this EIP-191 (`personal_sign`) signature of `text`."""
    signature = signature.strip()
    if not SIGNATURE.fullmatch(signature):
        raise SiweError(_l("That signature is not one: it should be 0x followed by 130 hexadecimal digits."))
    try:
        return Account.recover_message(encode_defunct(text=text), signature=bytes.fromhex(signature.removeprefix("0x")))
    except Exception as error:  # noqa: BLE001 - eth-keys raises several kinds for a signature off the curve
        raise SiweError(_l("That signature could not be read. Sign the message again.")) from error


def verify(
    text: str,
    signature: str,
    *,
    now: datetime,
    domain: str | None = None,
    nonce: str | None = None,
) -> SiweMessage:
    """Parse `text` and check it as EIP-4361 asks: the domain and nonce the caller expects (when given),
    the validity window at `now`, and that the message's own address made the signature."""
    message = parse_message(text)
    if domain is not None and (message.domain != domain or message.scheme not in (None, "https", "http")):
        raise SiweError(_l("This message was made for another site (%(domain)s). Sign the message this page shows.",
                           domain=message.domain))
    if nonce is not None and message.nonce != nonce:
        raise SiweError(_l("This message's nonce is not the one this page issued. Sign the message this page shows."))
    if message.expiration is not None and now >= message.expiration:
        raise SiweError(_l("This sign-in message has expired. Ask for a new one and sign it."))
    if message.not_before_time is not None and now < message.not_before_time:
        raise SiweError(_l("This sign-in message is not valid yet."))
    if recover_signer(text, signature) != message.address:
        raise SiweError(_l("The signature was not made by the wallet named in the message, or the message was changed after signing."))
    return message
