"""Sybil exclusion: a list of named rules, each giving the members it excludes and why.

Rules run in order and the first that matches a member names their exclusion (the rule's name is what
appeals and the public aggregate count). Clusters are "merged": the earliest account of a cluster
(lowest id) keeps its place and the others are excluded with a reason that names it.

Two rules read trust & safety's verdicts (`sapien.moderation.verdicts`): `flagged_by_trust_and_safety`
(an open flag, an active restriction or ban) and `shared_signal_cluster` (accounts sharing an IP network or a
device; clusters joined by wallets alone are left to the two wallet rules).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l

from sapien.airdrops.criteria import MemberInput
from sapien.moderation import verdicts


@dataclass(frozen=True)
class SybilContext:
    members: Mapping[int, MemberInput]
    funders: Mapping[str, str | None]  # wallet address → the address that first funded it (None: unknown)
    now: datetime


Reason = tuple[str, dict]  # a key of REASONS and its parameters: translated when shown, not when stored
Exclusions = dict[int, Reason]  # member id → reason

# What a reason says, translated at display time (`reason_text`) into the reader's language.
REASONS = {
    "banned_account": _l("The account is banned."),
    "flagged_by_trust_and_safety": _l("Flagged by trust & safety."),
    "shared_signal_cluster": _l("Shares %(what)s with member %(keeper)s."),
    "shared_wallet": _l("Its wallet is also linked to member %(keeper)s."),
    "shared_funding_source": _l("Its wallet was funded from the same address as member %(keeper)s's."),
    "no_wallet": _l("No linked wallet."),
    "below_minimum": _l("Below the minimum for: %(names)s."),
}


def encode_reason(key: str, **params) -> str:
    return json.dumps({"key": key, "params": params}, sort_keys=True)


def reason_text(stored: str | None) -> str:
    """A stored reason in the current language (plain text stored by hand is shown as it is)."""
    if not stored:
        return ""
    try:
        found = json.loads(stored)
        return str(REASONS[found["key"]]) % found.get("params", {})
    except (ValueError, KeyError, TypeError):
        return stored


@dataclass(frozen=True)
class Rule:
    name: str
    label: object  # a lazy translatable string
    apply: Callable[[SybilContext], Exclusions]


def banned_account(context: SybilContext) -> Exclusions:
    return {member.user_id: ("banned_account", {}) for member in context.members.values() if member.is_banned}


def flagged_by_trust_and_safety(context: SybilContext) -> Exclusions:
    """Members trust & safety flagged: an open flag, or an active restriction or ban."""
    flagged = verdicts.flagged_member_ids(context.now)
    return {member_id: ("flagged_by_trust_and_safety", {}) for member_id in flagged if member_id in context.members}


def shared_signal_cluster(context: SybilContext) -> Exclusions:
    """Accounts sharing an IP network, a device or a wallet, as trust & safety clusters them."""
    # A cluster joined by wallets alone is left to the wallet rules below, which say so more precisely.
    clusters = [(c.member_ids, c.shared) for c in verdicts.shared_signal_clusters() if set(c.shared) - {"wallet"}]
    found: Exclusions = {}
    for member_ids, shared in clusters:
        found.update(_merge(context, member_ids, "shared_signal_cluster", what=", ".join(sorted(shared))))
    return found


def shared_wallet(context: SybilContext) -> Exclusions:
    """One wallet linked to several accounts (spelled differently, or relinked)."""
    by_address: dict[str, list[int]] = defaultdict(list)
    for member in context.members.values():
        if member.address:
            by_address[member.address.lower()].append(member.user_id)
    found: Exclusions = {}
    for member_ids in by_address.values():
        found.update(_merge(context, member_ids, "shared_wallet"))
    return found


def shared_funding_source(context: SybilContext) -> Exclusions:
    """Linked wallets first funded by the same address."""
    by_funder: dict[str, list[int]] = defaultdict(list)
    for member in context.members.values():
        funder = context.funders.get(member.address) if member.address else None
        if funder:
            by_funder[funder.lower()].append(member.user_id)
    found: Exclusions = {}
    for member_ids in by_funder.values():
        found.update(_merge(context, member_ids, "shared_funding_source"))
    return found


def _merge(context: SybilContext, member_ids: Iterable[int], key: str, **params) -> Exclusions:
    ids = sorted(set(member_ids) & set(context.members))
    if len(ids) < 2:
        return {}
    keeper = context.members[ids[0]].username
    return {member_id: (key, {**params, "keeper": keeper}) for member_id in ids[1:]}


RULES: tuple[Rule, ...] = (
    Rule("banned_account", _l("Banned account"), banned_account),
    Rule("flagged_by_trust_and_safety", _l("Flagged by trust & safety"), flagged_by_trust_and_safety),
    Rule("shared_signal_cluster", _l("Shared IP address or device"), shared_signal_cluster),
    Rule("shared_wallet", _l("Wallet linked to several accounts"), shared_wallet),
    Rule("shared_funding_source", _l("Shared wallet funding source"), shared_funding_source),
)
# Eligibility (not Sybil) reasons a member can be left out for, named the same way.
RULE_LABELS = {"no_wallet": _l("No linked wallet"), "below_minimum": _l("Below a minimum"), **{rule.name: rule.label for rule in RULES}}


def exclusions(context: SybilContext) -> dict[int, tuple[str, str]]:
    """Member id → (rule name, stored reason), the first matching rule winning."""
    found: dict[int, tuple[str, str]] = {}
    for rule in RULES:
        for member_id, (key, params) in rule.apply(context).items():
            found.setdefault(member_id, (rule.name, encode_reason(key, **params)))
    return found
