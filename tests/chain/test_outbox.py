"""The transaction outbox on anvil: rows before sends, one nonce allocator per key, the same bytes on a
retry, receipts before "confirmed", and the reconciler finishing half-done rows."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from sapien.chain.contracts import call_data
from sapien.chain.models import ChainTransaction, SignerNonce
from sapien.chain.outbox import ChainUnavailable, advance, queue_transaction
from sapien.database import utcnow
from sapien.extensions import db
from tests.chain.conftest import MEMBER_ADDRESS, OTHER_ADDRESS


def queue_mint_tokens(chain, key: str, to: str = MEMBER_ADDRESS, amount: int = 5) -> int:
    data = call_data("SapienToken", "mint", to, amount)
    return queue_transaction(key=key, kind="token_mint", chain_id=chain.chain_id, to=chain.addresses["SapienToken"], data=data, now=utcnow())


def row(tx_id: int) -> ChainTransaction:
    db.session.expire_all()
    return db.session.get(ChainTransaction, tx_id)


def balance(chain, address: str = MEMBER_ADDRESS) -> int:
    return chain.contract("SapienToken").functions.balanceOf(address).call()


def test_a_transaction_goes_pending_signed_sent_confirmed_and_runs_once(chain):
    tx_id = queue_mint_tokens(chain, "test:once")
    assert row(tx_id).status == "pending" and row(tx_id).raw_tx is None
    assert queue_mint_tokens(chain, "test:once") == tx_id  # the same effect is queued once

    assert advance(tx_id, utcnow()) == "confirmed"
    done = row(tx_id)
    assert (done.attempts, done.block_number is not None, done.tx_hash.startswith("0x")) == (1, True, True)
    receipt = chain.w3.eth.get_transaction_receipt(done.tx_hash)
    assert receipt["status"] == 1 and receipt["blockNumber"] == done.block_number
    assert balance(chain) == 5

    assert advance(tx_id, utcnow()) == "confirmed"  # run twice: nothing more happens
    assert balance(chain) == 5


def test_a_retry_after_a_crash_between_sign_and_send_broadcasts_the_same_bytes(chain):
    from sapien.chain import outbox
    from sapien.chain.client import web3_client

    tx_id = queue_mint_tokens(chain, "test:resend")
    w3 = web3_client()
    assert outbox._sign(tx_id, utcnow(), w3) == "signed"  # the worker died here
    signed = row(tx_id)
    raw, tx_hash = signed.raw_tx, signed.tx_hash

    assert advance(tx_id, utcnow()) == "confirmed"
    assert (row(tx_id).raw_tx, row(tx_id).tx_hash) == (raw, tx_hash)
    assert balance(chain) == 5


def test_a_second_broadcast_of_sent_bytes_counts_as_sent(chain):
    from sapien.chain import outbox
    from sapien.chain.client import web3_client

    tx_id = queue_mint_tokens(chain, "test:twice")
    w3 = web3_client()
    outbox._sign(tx_id, utcnow(), w3)
    assert outbox._broadcast(tx_id, utcnow(), w3) == "sent"  # mined at once by anvil
    # The worker died before it saw "sent" committed: back to signed, and the job runs again.
    db.session.execute(ChainTransaction.__table__.update().where(ChainTransaction.id == tx_id).values(status="signed"))
    db.session.commit()
    assert advance(tx_id, utcnow()) == "confirmed"  # "nonce too low", but our own hash is mined
    assert balance(chain) == 5


def test_a_nonce_taken_by_another_transaction_is_signed_again(chain):
    from sapien.chain import outbox
    from sapien.chain.client import signer_address, web3_client

    tx_id = queue_mint_tokens(chain, "test:stolen")
    w3 = web3_client()
    outbox._sign(tx_id, utcnow(), w3)
    lost_hash = row(tx_id).tx_hash
    # Another tool spends the same nonce with the same key before we broadcast.
    chain.transact(chain.contract("SapienToken").functions.mint(OTHER_ADDRESS, 1), signer_address())

    assert advance(tx_id, utcnow()) == "confirmed"
    assert row(tx_id).tx_hash != lost_hash
    assert balance(chain) == 5 and balance(chain, OTHER_ADDRESS) == 1


def test_a_reverting_transaction_fails_with_its_reason_and_spends_no_nonce(chain):
    from sapien.chain.client import signer_address

    badge = chain.addresses["SapienBadge"]
    first = queue_transaction(key="test:badge-1", kind="badge_mint", chain_id=chain.chain_id, to=badge,
                              data=call_data("SapienBadge", "mint", MEMBER_ADDRESS, 1, "first-label"), now=utcnow())
    again = queue_transaction(key="test:badge-2", kind="badge_mint", chain_id=chain.chain_id, to=badge,
                              data=call_data("SapienBadge", "mint", MEMBER_ADDRESS, 1, "first-label"), now=utcnow())
    assert advance(first, utcnow()) == "confirmed"
    nonce_before = chain.w3.eth.get_transaction_count(signer_address())
    assert advance(again, utcnow()) == "failed"
    failed = row(again)
    assert failed.nonce is None and failed.raw_tx is None
    assert failed.last_error == "reverted: AlreadyMinted(uint256)"
    assert chain.w3.eth.get_transaction_count(signer_address()) == nonce_before


def test_concurrent_workers_never_share_a_nonce(chain, app):
    ids = [queue_mint_tokens(chain, f"test:many-{n}", amount=1) for n in range(8)]
    errors = []

    def work(chunk):
        with app.app_context():
            try:
                for tx_id in chunk:
                    advance(tx_id, utcnow())
            except Exception as error:  # noqa: BLE001
                errors.append(error)

    threads = [threading.Thread(target=work, args=(ids[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    rows = [row(tx_id) for tx_id in ids]
    assert {r.status for r in rows} == {"confirmed"}
    assert len({r.nonce for r in rows}) == 8
    assert balance(chain) == 8
    assert db.session.scalar(select(func.count()).select_from(SignerNonce)) == 1


def test_the_node_down_leaves_the_row_pending_with_waiting_for_the_chain(chain, app_ctx):
    tx_id = queue_mint_tokens(chain, "test:down")
    app_ctx.config["CHAIN_RPC_URL"] = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(ChainUnavailable):
        advance(tx_id, utcnow())
    assert row(tx_id).status == "pending"
    assert row(tx_id).last_error.startswith("waiting for the chain")


def test_the_reconciler_lists_half_done_rows_on_the_chain_queue_until_confirmed(chain):
    from sapien.chain import outbox
    from sapien.chain.client import web3_client
    from sapien.queue import pending_rows

    tx_id = queue_mint_tokens(chain, "test:reconcile")
    outbox._sign(tx_id, utcnow(), web3_client())
    listed = [work for source, work in pending_rows() if source == "chain-outbox"]
    assert [(w.func, w.args, w.job_id, w.queue) for w in listed] == [("jobs.chain.send_transaction", (tx_id,), f"chain-tx-{tx_id}", "chain")]

    from jobs.chain import send_transaction

    assert send_transaction(tx_id) == "confirmed"
    assert send_transaction(tx_id) == "confirmed"  # the job twice
    assert [work for source, work in pending_rows() if source == "chain-outbox"] == []
    assert balance(chain) == 5


def test_a_stuck_transaction_is_replaced_with_higher_fees_and_mined_once(chain, app_ctx):
    from web3.exceptions import TransactionNotFound

    from sapien.chain import outbox
    from sapien.chain.client import web3_client

    tx_id = queue_mint_tokens(chain, "test:stuck", amount=7)
    app_ctx.config.update(CHAIN_RECEIPT_TIMEOUT_SECONDS=0.3, CHAIN_REPLACE_AFTER_SECONDS=0)
    chain.w3.provider.make_request("evm_setAutomine", [False])  # nothing is mined: the transaction sits in the pool
    try:
        outbox._sign(tx_id, utcnow(), web3_client())
        first = row(tx_id)
        first_hash, first_fees = first.tx_hash, first.payload["fees"]
        with pytest.raises(outbox.TransactionPending):
            advance(tx_id, utcnow())
        stuck = row(tx_id)
        assert stuck.status == "sent" and stuck.payload["replaced_hashes"] == [first_hash] and stuck.attempts == 2
        second = chain.w3.eth.get_transaction(stuck.tx_hash)
        assert second["nonce"] == first.nonce == stuck.nonce  # the same nonce: only one can ever be mined
        assert second["maxPriorityFeePerGas"] >= first_fees["maxPriorityFeePerGas"] * 125 // 100
        assert second["maxFeePerGas"] >= first_fees["maxFeePerGas"] * 125 // 100
        with pytest.raises(TransactionNotFound):  # the node dropped the old version for the new one
            chain.w3.eth.get_transaction(first_hash)
        chain.w3.provider.make_request("evm_mine", [])
    finally:
        chain.w3.provider.make_request("evm_setAutomine", [True])
    app_ctx.config["CHAIN_REPLACE_AFTER_SECONDS"] = 180
    assert advance(tx_id, utcnow()) == "confirmed"
    done = row(tx_id)
    assert chain.w3.eth.get_transaction_receipt(done.tx_hash)["status"] == 1
    assert chain.w3.eth.get_transaction_receipt(done.tx_hash)["transactionHash"].to_0x_hex() == done.tx_hash
    assert balance(chain) == 7  # paid once, whichever version was mined
