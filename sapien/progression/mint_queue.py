"""When badge mints are work to do, and what the badge page shows of them (no web3 here: it loads slowly).

A pending request is work once its member has a wallet (`events.wallet_of`); a submitted one always is,
until its receipt makes it minted or failed. A new award queues the batch job (`jobs.chain.mint_ready_badges`,
one id, so a burst of awards shares its runs: their transactions go out pipelined); the reconciler lists
each request on its own (`jobs.chain.mint_badge`), which finishes whatever a crash or an award that came
while the batch was already running left behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from sapien import events
from sapien.chain.models import ChainTransaction
from sapien.chain.registry import chain_info
from sapien.database import after_commit
from sapien.extensions import db
from sapien.progression.models import BadgeAward, MintRequest
from sapien.queue import PendingWork, enqueue_once, pending_work_source

MINT_JOB = "jobs.chain.mint_badge"
MINT_BATCH_JOB = "jobs.chain.mint_ready_badges"
MINT_BATCH_JOB_ID = "chain-mint-ready"


def mint_job_id(mint_request_id: int) -> str:
    return f"chain-mint-{mint_request_id}"


def enqueue_mint(mint_request_id: int):
    return enqueue_once(MINT_JOB, mint_request_id, job_id=mint_job_id(mint_request_id), queue="chain")


def enqueue_mint_batch():
    return enqueue_once(MINT_BATCH_JOB, job_id=MINT_BATCH_JOB_ID, queue="chain")


def mints_to_do(limit: int = 10_000) -> list[int]:
    rows = db.session.execute(
        select(MintRequest.id, MintRequest.user_id, MintRequest.state)
        .where(MintRequest.state.in_(("pending", "submitted")))
        .order_by(MintRequest.id)
        .limit(limit)
    ).all()
    return [mint_id for mint_id, user_id, state in rows if state == "submitted" or events.wallet_of.ask(user_id=user_id)]


@pending_work_source("progression-badge-mints")
def _mints_pending():
    for mint_id in mints_to_do():
        yield PendingWork(MINT_JOB, (mint_id,), mint_job_id(mint_id), queue="chain")


def on_badge_awarded(_sender=None, *, user_id: int, award_id: int, **_ignored) -> None:
    """A new award mints at once, with any others ready, when its member has a wallet (else the request
    waits for one)."""
    mint_id = db.session.scalar(select(MintRequest.id).where(MintRequest.award_id == award_id, MintRequest.state == "pending"))
    if mint_id is not None and events.wallet_of.ask(user_id=user_id):
        enqueue_mint_batch()


def on_transaction_retried(_sender=None, *, tx_id: int, kind: str, now, **_ignored) -> None:
    """A moderator retried a failed mint's transaction (chain console): in the retry's transaction the
    request is submitted again, and its job queued after the commit (the token id is fixed, so it can
    still mint only once)."""
    if kind != "badge_mint":
        return
    request = db.session.scalar(select(MintRequest).where(MintRequest.tx_id == tx_id, MintRequest.state == "failed").with_for_update())
    if request is not None:
        request.state, request.last_error, request.updated_at = "submitted", None, now
        mint_id = request.id
        after_commit(lambda: enqueue_mint(mint_id))


@dataclass(frozen=True)
class MintView:
    """What a member sees of one badge's mint."""

    state: str  # pending | waiting_wallet | submitted | minted | failed | cancelled
    tx_hash: str | None = None
    explorer_url: str | None = None
    token_id: str | None = None
    chain_name: str | None = None
    waiting_for_chain: bool = False
    error: str | None = None

    @property
    def live(self) -> bool:
        """Still moving: the page polls."""
        return self.state in ("pending", "submitted")


def mint_view(user_id: int, badge_slug: str) -> MintView | None:
    row = db.session.execute(
        select(MintRequest, ChainTransaction)
        .join(BadgeAward, BadgeAward.id == MintRequest.award_id)
        .outerjoin(ChainTransaction, ChainTransaction.id == MintRequest.tx_id)
        .where(MintRequest.user_id == user_id, MintRequest.badge_slug == badge_slug, BadgeAward.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    request, transaction = row
    state = request.state
    if state == "pending" and not events.wallet_of.ask(user_id=user_id):
        state = "waiting_wallet"
    info = chain_info(request.chain_id) if request.chain_id is not None else None
    tx_hash = transaction.tx_hash if transaction is not None and transaction.status in ("sent", "confirmed", "failed") else None
    error = request.last_error or (transaction.last_error if transaction is not None else None)
    return MintView(
        state=state,
        tx_hash=tx_hash,
        explorer_url=info.tx_url(tx_hash) if info else None,
        token_id=request.token_id,
        chain_name=info.name if info else None,
        waiting_for_chain=bool(error and error.startswith("waiting for the chain")) and state in ("pending", "submitted"),
        error=error if state == "failed" else None,
    )


@dataclass(frozen=True)
class MintedToken:
    """A badge token the chain knows (sent or minted): what its metadata describes."""

    token_id: str
    badge_slug: str
    user_id: int
    awarded_at: object


def minted_token(token_id: str) -> MintedToken | None:
    """The badge behind a token id, when its mint was sent or done (metadata answers for those only)."""
    if not token_id.isdigit() or len(token_id) > 78:
        return None
    row = db.session.execute(
        select(MintRequest.token_id, MintRequest.badge_slug, MintRequest.user_id, BadgeAward.awarded_at)
        .join(BadgeAward, BadgeAward.id == MintRequest.award_id)
        .where(MintRequest.token_id == str(int(token_id)), MintRequest.state.in_(("submitted", "minted")))
    ).first()
    return MintedToken(*row) if row else None
