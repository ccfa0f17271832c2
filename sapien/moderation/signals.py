"""Trust signals, recorded with care for privacy.

Rules:
- an address is never stored in the clear: only its keyed hash (HMAC-SHA256 with the app's secret key, so
  the table alone cannot be turned back into addresses by hashing all 2^32 of them) and its network, the
  /24 of an IPv4 address or the /48 of an IPv6 one (what "same place" means for the detectors);
- the device id is a random first-party cookie the site sets on a first visit (httponly, SameSite=Lax); it
  says "the same browser", nothing about the person;
- signals older than `retention_days()` (config TRUST_SIGNAL_RETENTION_DAYS, 90) are deleted by the daily
  job `jobs.moderation.enforce_retention` (docs/trust-and-safety.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete

from sapien.database import unit_of_work
from sapien.moderation.models import SIGNAL_KINDS, TrustSignal
from sapien.queue import PendingWork, pending_work_source

DEVICE_COOKIE = "sapien_device"
DEVICE_COOKIE_DAYS = 400
RETENTION_DAYS = 90
RETENTION_JOB = "jobs.moderation.enforce_retention"


def retention_days() -> int:
    return int(current_app.config.get("TRUST_SIGNAL_RETENTION_DAYS", RETENTION_DAYS))


def new_device_id() -> str:
    return secrets.token_hex(16)


def valid_device_id(value: str | None) -> str:
    """The cookie's value if it is one we could have set (32 hex characters), else ""."""
    value = (value or "").strip()
    return value if len(value) == 32 and all(ch in "0123456789abcdef" for ch in value) else ""


def address_hash(address: str, key: str) -> str:
    return hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()


def network_of(address: str) -> str:
    """The /24 of an IPv4 address, the /48 of an IPv6 one; "local" for this machine's own
    addresses, "unknown" for anything that is not an address. Detectors skip both."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        return "local"  # this machine: every developer's sign-ins, not a network members share
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def record_signal(user_id: int, kind: str, address: str, user_agent: str, device_id: str, now: datetime) -> TrustSignal:
    if kind not in SIGNAL_KINDS:
        raise ValueError(f"unknown signal kind {kind!r}")
    with unit_of_work() as session:
        row = TrustSignal(
            user_id=user_id, kind=kind, ip_hash=address_hash(address or "", current_app.config["SECRET_KEY"]),
            network=network_of(address), device_id=valid_device_id(device_id), user_agent=(user_agent or "")[:255], created_at=now,
        )
        session.add(row)
        session.flush()
    return row


def enforce_retention(now: datetime) -> int:
    """Delete the signals older than the retention period; returns how many went."""
    cutoff = now - timedelta(days=retention_days())
    with unit_of_work() as session:
        result = session.execute(delete(TrustSignal).where(TrustSignal.created_at < cutoff))
    return result.rowcount or 0


def retention_job_id(at: datetime) -> str:
    """One run per day (safe twice): the day's number is the id."""
    return f"moderation-retention-{int(at.timestamp()) // 86400}"


@pending_work_source("moderation-retention", periodic=True)
def _retention_pending():
    from sapien.database import utcnow

    yield PendingWork(RETENTION_JOB, (), retention_job_id(utcnow()))
