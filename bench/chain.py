"""The chain (issue 11), on a fresh anvil of its own: badge mints and token payouts through the job path.

- Badge mints: `jobs.chain.mint_ready_badges`, the job a badge award queues (the outbox signs a hundred at a time under
  one nonce lock, sends them all, then collects their receipts), and for comparison `jobs.chain.mint_badge`
  one mint per job (the reconciler's, after a crash). The ceiling, in the same run and on the same anvil, is anvil itself: one sender (the
  unlocked signer account) sending the same mint calls and waiting for each receipt.
- Token payouts: 10,000 pending withdrawals (to 10,000 wallets) settled by `jobs.chain.settle_withdrawals`:
  the batches formed, each one's `payMinting` transaction signed, sent and confirmed, every withdrawal
  marked paid. The ceiling is the same batches' calldata sent straight to anvil by the unlocked signer.
  The reconciliation of the ledger against the chain then runs over all of it and must find nothing.

`BENCH_CHAIN_MINTS` and `BENCH_CHAIN_PAYOUTS` shrink the run (a quick look on a busy machine).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time

from bench.harness import ROOT, Figure, free_port, fresh_app
from sapien.i18n import TOKEN_UNIT

NAME = "Chain, anvil"
MINTS = int(os.environ.get("BENCH_CHAIN_MINTS", 300))
SINGLE_MINTS = max(MINTS // 6, 10)  # the one-mint-per-job path, for comparison
PAYOUTS = int(os.environ.get("BENCH_CHAIN_PAYOUTS", 10_000))
MINT_GOAL_PER_SECOND = 50
PAYOUT_GOAL_SECONDS = 60.0
AMOUNT = TOKEN_UNIT // 1000  # a thousandth of a token each


def _anvil() -> tuple[subprocess.Popen, str]:
    import socket

    port = free_port()
    process = subprocess.Popen([str(ROOT / "node_modules" / ".bin" / "anvil"), "--port", str(port), "--silent"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("anvil did not start")



def seed_members(count: int, prefix: str, now, *, address_offset: int) -> list[tuple[int, str]]:
    """`count` members, each with a linked wallet on anvil, in bulk SQL; returns (member id, address)."""
    from sqlalchemy import text

    from sapien.extensions import db

    session = db.session
    ids = list(session.scalars(
        text("INSERT INTO users (username, username_key, username_skeleton, email, password_hash, display_name, bio, role, timezone,"
             " hide_from_boards, session_version, is_banned, created_at)"
             " SELECT :p || n, :p || n, :p || n, :p || n || '@example.org', '', :p || n, '', 'member', 'UTC', false, 1, false, :now"
             " FROM generate_series(1, :count) AS n ORDER BY n RETURNING id"),
        {"p": prefix, "count": count, "now": now},
    ))
    from eth_utils import to_checksum_address

    addresses = [to_checksum_address(f"0x{address_offset + n:040x}") for n in range(count)]  # as wallets store them
    session.execute(
        text("INSERT INTO wallets (user_id, address, payout_chain_id, linked_at)"
             " SELECT u, a, 31337, :now FROM unnest(CAST(:ids AS integer[]), CAST(:addresses AS text[])) AS w(u, a)"),
        {"ids": ids, "addresses": addresses, "now": now},
    )
    session.commit()
    return list(zip(ids, addresses, strict=True))


def _mints(now) -> tuple[float, float, float]:
    """(mints per second through the batch job, through the one-mint job, anvil's own ceiling per second)."""
    from sqlalchemy import select

    from jobs.chain import mint_badge, mint_ready_badges
    from sapien.chain.client import signer_address, web3_client
    from sapien.chain.contracts import contract_at
    from sapien.chain.deploy import contract_address
    from sapien.extensions import db
    from sapien.progression.awards import award_badge
    from sapien.progression.models import MintRequest

    members = seed_members(MINTS + SINGLE_MINTS, "mint", now, address_offset=0x10_0000)
    for user_id, _address in members[SINGLE_MINTS:]:
        award_badge(user_id, "first-label", now)
    started = time.perf_counter()
    minted = 0
    while minted < MINTS:
        done = mint_ready_badges().get("minted", 0)
        if not done:
            raise RuntimeError(f"the mint job stopped after {minted} of {MINTS} mints")
        minted += done
    batch_rate = MINTS / (time.perf_counter() - started)

    for user_id, _address in members[:SINGLE_MINTS]:
        award_badge(user_id, "first-label", now)
    single = list(db.session.scalars(select(MintRequest.id).where(MintRequest.state == "pending").order_by(MintRequest.id)))
    started = time.perf_counter()
    for mint_id in single:
        if mint_badge(mint_id) != "minted":
            raise RuntimeError(f"mint {mint_id} did not mint")
    single_rate = len(single) / (time.perf_counter() - started)

    w3 = web3_client(timeout=30)
    badge = contract_at(w3, "SapienBadge", contract_address(w3.eth.chain_id, "SapienBadge"))
    sender = signer_address()
    started = time.perf_counter()
    for n in range(MINTS):
        tx_hash = badge.functions.mint(members[n][1], 1_000_000 + n, "first-label").transact({"from": sender})
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.005)
    ceiling_rate = MINTS / (time.perf_counter() - started)
    return batch_rate, single_rate, ceiling_rate


def _payouts(now) -> tuple[float, float, float, int]:
    """(seconds to settle, anvil's ceiling in seconds, seconds to reconcile, batches)."""
    from sqlalchemy import func, select, text

    from jobs.chain import settle_withdrawals
    from sapien.chain.client import signer_address, web3_client
    from sapien.chain.contracts import call_data
    from sapien.chain.deploy import contract_address
    from sapien.chain.models import ChainTransaction
    from sapien.chain.payout_models import Withdrawal
    from sapien.chain.reconciliation import reconcile_payouts
    from sapien.extensions import db

    members = seed_members(PAYOUTS, "pay", now, address_offset=0x20_0000)
    session = db.session
    # Each member withdrew AMOUNT: the ledger's grant and debit, and the pending withdrawal (bulk SQL: the
    # request path is measured by the tests, not here).
    session.execute(
        text("INSERT INTO ledger_entries (user_id, currency, amount, kind, idempotency_key, memo, balance_after, created_at)"
             " SELECT u, 'token', :amount, 'bench_grant', 'bench-grant:' || u, '', :amount, :now FROM unnest(CAST(:ids AS integer[])) AS u"
             " UNION ALL SELECT u, 'token', -:amount, 'withdrawal', 'withdrawal:bench-' || u, '', 0, :now FROM unnest(CAST(:ids AS integer[])) AS u"),
        {"ids": [user_id for user_id, _a in members], "amount": AMOUNT, "now": now},
    )
    session.execute(
        text("INSERT INTO balances (user_id, currency, amount, updated_at) SELECT u, 'token', 0, :now FROM unnest(CAST(:ids AS integer[])) AS u"),
        {"ids": [user_id for user_id, _a in members], "now": now},
    )
    session.execute(
        text("INSERT INTO withdrawals (key, user_id, currency, amount, chain_id, address, status, debit_entry_id, created_at, updated_at)"
             " SELECT 'bench-' || e.user_id, e.user_id, 'token', :amount, 31337, w.address, 'pending', e.id, :now, :now"
             " FROM ledger_entries e JOIN wallets w ON w.user_id = e.user_id WHERE e.kind = 'withdrawal' ORDER BY e.user_id"),
        {"amount": AMOUNT, "now": now},
    )
    session.commit()

    started = time.perf_counter()
    result = settle_withdrawals()
    seconds = time.perf_counter() - started
    confirmed = session.scalar(select(func.count()).select_from(Withdrawal).where(Withdrawal.status == "confirmed"))
    if confirmed != PAYOUTS or result["unfinished"] or settle_withdrawals()["batches_formed"]:
        raise RuntimeError(f"settled {confirmed} of {PAYOUTS} withdrawals: {result}")

    started = time.perf_counter()
    report = reconcile_payouts(now)
    reconcile_seconds = time.perf_counter() - started
    if not report.ok or len(report.members) != PAYOUTS:
        raise RuntimeError(f"the reconciliation found {len(report.mismatched_batches)} batch and {len(report.mismatched_members)} member mismatches")

    # The ceiling: the same batches (fresh batch ids) sent straight to anvil, each receipt awaited.
    w3 = web3_client(timeout=60)
    chain_id = w3.eth.chain_id
    payout, token = contract_address(chain_id, "SapienPayout"), contract_address(chain_id, "SapienToken")
    sender = signer_address()
    batches = list(session.scalars(select(ChainTransaction).where(ChainTransaction.kind == "payout").order_by(ChainTransaction.id)))
    calls = []
    for transaction in batches:
        rows = session.execute(
            select(Withdrawal.address, Withdrawal.amount).where(Withdrawal.batch_id == select_batch_id(transaction.id)).order_by(Withdrawal.id)
        ).all()
        addresses = [w3.to_checksum_address(address) for address, _amount in rows]
        calls.append(call_data("SapienPayout", "payMinting", secrets.token_bytes(32), w3.to_checksum_address(token), addresses,
                               [int(amount) for _a, amount in rows]))
    started = time.perf_counter()
    for data in calls:
        tx_hash = w3.eth.send_transaction({"from": sender, "to": w3.to_checksum_address(payout), "data": data})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.005)
        if receipt["status"] != 1:
            raise RuntimeError("a ceiling batch reverted")
    ceiling = time.perf_counter() - started
    return seconds, ceiling, reconcile_seconds, len(batches)


def select_batch_id(tx_id: int):
    from sqlalchemy import select

    from sapien.chain.payout_models import PayoutBatch

    return select(PayoutBatch.id).where(PayoutBatch.tx_id == tx_id).scalar_subquery()


def run() -> list[Figure]:
    from sapien.chain.deploy import deploy_contracts
    from sapien.database import utcnow

    anvil, rpc_url = _anvil()
    try:
        app = fresh_app(CHAIN_RPC_URL=rpc_url)
        with app.app_context():
            now = utcnow()
            deploy_contracts(now)
            job_rate, single_rate, mint_ceiling = _mints(now)
            seconds, payout_ceiling, reconcile_seconds, batches = _payouts(now)
    finally:
        anvil.terminate()
        anvil.wait(timeout=10)
    return [
        Figure(NAME, f"badge mints through the job an award queues ({MINTS:,} mints, `mint_ready_badges`: pipelined 100 at a time)", round(job_rate, 1),
               "mints/s", ceiling=f"anvil, one sender awaiting each receipt: {mint_ceiling:.1f} tx/s", goal=f">= {MINT_GOAL_PER_SECOND} mints/s",
               met=job_rate >= MINT_GOAL_PER_SECOND),
        Figure(NAME, f"badge mints one job per mint (`mint_badge`, the reconciler's path; {SINGLE_MINTS:,} mints one after another)", round(single_rate, 1), "mints/s",
               ceiling=f"anvil, one sender awaiting each receipt: {mint_ceiling:.1f} tx/s"),
        Figure(NAME, f"settle {PAYOUTS:,} member payouts ({batches} batch transactions, ledger to confirmed)", round(seconds, 2), "s",
               ceiling=f"the same batches sent straight to anvil: {payout_ceiling:.2f} s", goal=f"< {PAYOUT_GOAL_SECONDS:.0f} s",
               met=seconds < PAYOUT_GOAL_SECONDS if PAYOUTS >= 10_000 else None),
        Figure(NAME, f"reconcile the ledger against the chain ({PAYOUTS:,} members, {batches} batches)", round(reconcile_seconds, 2), "s",
               ceiling="", goal="no mismatch", met=True),
    ]
