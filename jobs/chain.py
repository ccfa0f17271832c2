"""Chain jobs on the `chain` queue: drive one outbox transaction, mint one badge, settle token withdrawals
(each safe to run twice)."""

from __future__ import annotations

from jobs import app_context


def send_transaction(tx_id: int) -> str:
    """Sign, send and confirm one outbox row from wherever it stopped; returns its status."""
    from sapien.chain.outbox import advance
    from sapien.database import utcnow

    with app_context():
        return advance(tx_id, utcnow())


def mint_badge(mint_request_id: int) -> str:
    """Mint one awarded badge to the member's linked wallet (or leave it waiting); returns its state."""
    from sapien.database import utcnow
    from sapien.progression.minting import mint_badge as mint

    with app_context():
        return mint(mint_request_id, utcnow())


def settle_withdrawals() -> dict:
    """Batch pending token withdrawals and pay each batch in one transaction; safe to run twice."""
    from dataclasses import asdict

    from sapien.chain.payouts import settle_withdrawals as settle
    from sapien.database import utcnow

    with app_context():
        return asdict(settle(utcnow()))


def mint_ready_badges() -> dict:
    """Mint every awarded badge whose member has a wallet, a pipelined batch at a time until none is left
    (or a batch mints nothing); returns counts by final state. Safe to run twice."""
    from sapien.database import utcnow
    from sapien.progression.minting import MINT_BATCH
    from sapien.progression.minting import mint_ready_badges as mint_ready

    totals: dict[str, int] = {}
    with app_context():
        while True:
            counts = mint_ready(utcnow())
            for state, number in counts.items():
                totals[state] = totals.get(state, 0) + number
            if sum(counts.values()) < MINT_BATCH or not counts.get("minted"):
                return totals
