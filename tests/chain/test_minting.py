"""Badge minting through the outbox: to the member's linked wallet, once, shown live on the badge page,
with metadata and image for every minted token."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from jobs.chain import mint_badge
from sapien.chain.contracts import badge_token_id
from sapien.chain.models import ChainTransaction
from sapien.database import utcnow
from sapien.extensions import db
from sapien.progression.models import MintRequest
from tests.chain.conftest import MEMBER_ADDRESS


def award(user_id: int, slug: str = "first-label"):
    from sapien.progression.awards import award_badge

    return award_badge(user_id, slug, utcnow(), quiet_if_held=True)


def mint_request(user_id: int, slug: str = "first-label") -> MintRequest:
    db.session.expire_all()
    return db.session.scalar(select(MintRequest).where(MintRequest.user_id == user_id, MintRequest.badge_slug == slug))


def owner_count(chain, address: str = MEMBER_ADDRESS) -> int:
    return chain.contract("SapienBadge").functions.balanceOf(address).call()


def test_a_member_without_a_wallet_waits_and_is_no_pending_work(chain, wallets, make_member):
    from sapien.queue import pending_rows

    member = make_member("ada")
    award(member.id)
    request = mint_request(member.id)
    assert mint_badge(request.id) == "pending"
    assert mint_request(member.id).tx_id is None
    assert db.session.scalar(select(func.count()).select_from(ChainTransaction)) == 0
    assert [w for source, w in pending_rows() if source == "progression-badge-mints"] == []
    page = member.client.get("/badges/first-label").get_data(as_text=True)
    assert "Mint: waiting for you to link a wallet" in page

    # Once a wallet is linked the reconciler lists it on the chain queue.
    wallets[member.id] = MEMBER_ADDRESS
    listed = [w for source, w in pending_rows() if source == "progression-badge-mints"]
    assert [(w.func, w.args, w.queue) for w in listed] == [("jobs.chain.mint_badge", (request.id,), "chain")]


def test_an_award_to_a_member_with_a_wallet_is_queued_and_minted_once(chain, wallets, make_member, redis_conn):
    from rq import Queue
    from rq.serializers import JSONSerializer

    member = make_member("ada")
    wallets[member.id] = MEMBER_ADDRESS
    award(member.id)
    request = mint_request(member.id)
    queued = Queue("chain", connection=redis_conn, serializer=JSONSerializer).get_job_ids()
    assert queued == ["chain-mint-ready"]  # the batch job, shared by every award of the moment

    assert mint_badge(request.id) == "minted"
    assert mint_badge(request.id) == "minted"  # the job twice: one token
    done = mint_request(member.id)
    token_id = badge_token_id(member.id, "first-label")
    assert (done.token_id, done.wallet_address, done.chain_id) == (str(token_id), MEMBER_ADDRESS, chain.chain_id)
    badge = chain.contract("SapienBadge")
    assert badge.functions.ownerOf(token_id).call() == MEMBER_ADDRESS
    assert owner_count(chain) == 1
    assert db.session.scalar(select(func.count()).select_from(ChainTransaction).where(ChainTransaction.kind == "badge_mint")) == 1

    page = member.client.get("/badges/first-label").get_data(as_text=True)
    tx_hash = db.session.get(ChainTransaction, done.tx_id).tx_hash
    assert "Mint: minted on chain" in page and tx_hash in page
    assert 'hx-trigger="every' not in page.split('id="mint-status"', 1)[1].split(">", 1)[0]  # done: no more polling


def test_minted_tokens_answer_metadata_and_image(chain, wallets, make_member, app):
    member = make_member("ada")
    wallets[member.id] = MEMBER_ADDRESS
    award(member.id)
    mint_badge(mint_request(member.id).id)
    token_id = badge_token_id(member.id, "first-label")
    uri = chain.contract("SapienBadge").functions.tokenURI(token_id).call()
    path = uri.removeprefix(app.config["PUBLIC_BASE_URL"].rstrip("/"))

    anonymous = app.test_client()
    metadata = anonymous.get(path)
    assert metadata.status_code == 200
    body = metadata.get_json()
    assert body["name"] == "First label" and body["description"]
    assert {"trait_type": "Tier", "value": "bronze"} in body["attributes"]
    image = anonymous.get(body["image"].removeprefix(app.config["PUBLIC_BASE_URL"].rstrip("/")))
    assert image.status_code == 200 and image.mimetype == "image/svg+xml" and b"<svg" in image.data

    missing = anonymous.get(f"/badges/token/{token_id + 1}")
    assert missing.status_code == 404 and "no minted badge" in missing.get_json()["error"]
    assert anonymous.get("/badges/token/not-a-number").status_code == 404
    assert anonymous.get(f"/badges/token/{token_id + 1}/image.svg").status_code == 404


def test_the_mint_status_polls_while_pending_and_says_when_the_chain_is_down(chain, wallets, make_member, app_ctx):
    from sapien.chain.outbox import ChainUnavailable

    member = make_member("ada")
    wallets[member.id] = MEMBER_ADDRESS
    award(member.id)
    request = mint_request(member.id)
    fragment = member.client.get("/badges/first-label/mint", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html
    assert "Mint: waiting to be minted on chain" in html and 'hx-trigger="every' in html
    assert "<html" in member.client.get("/badges/first-label/mint").get_data(as_text=True)  # a full page too

    rpc = app_ctx.config["CHAIN_RPC_URL"]
    app_ctx.extensions.pop("sapien_chain_ids", None)
    app_ctx.config["CHAIN_RPC_URL"] = "http://127.0.0.1:9"
    with pytest.raises(ChainUnavailable):
        mint_badge(request.id)
    db.session.expire_all()  # the test client's requests share this test's app context and session
    html = member.client.get("/badges/first-label/mint", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Waiting for the chain" in html and 'hx-trigger="every' in html

    app_ctx.config["CHAIN_RPC_URL"] = rpc
    assert mint_badge(request.id) == "minted"
    db.session.expire_all()
    html = member.client.get("/badges/first-label/mint", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Mint: minted on chain" in html and "Waiting for the chain" not in html


def test_a_revoked_badge_is_not_minted(chain, wallets, make_member):
    from sapien.accounts import service as accounts
    from sapien.progression.awards import revoke_badge

    member = make_member("ada")
    moderator = accounts.sign_up(accounts.SignUp(username="mod", email="mod@example.org", password="correct horse battery"), now=utcnow(), role="moderator")
    award(member.id)  # no wallet yet: pending
    request = mint_request(member.id)
    revoke_badge(request.award_id, actor_id=moderator.id, reason="Duplicate account", now=utcnow())
    wallets[member.id] = MEMBER_ADDRESS
    assert mint_badge(request.id) == "cancelled"
    assert owner_count(chain) == 0


def test_a_mint_whose_token_already_exists_on_chain_counts_as_minted_not_twice(chain, wallets, make_member):
    from sapien.chain.client import signer_address

    member = make_member("ada")
    wallets[member.id] = MEMBER_ADDRESS
    # An earlier life of the database minted it already (a restored backup).
    chain.transact(chain.contract("SapienBadge").functions.mint(MEMBER_ADDRESS, member.id, "first-label"), signer_address())
    award(member.id)
    assert mint_badge(mint_request(member.id).id) == "minted"
    assert owner_count(chain) == 1


def test_without_deployed_contracts_the_job_fails_loudly(app_ctx, wallets, make_member):
    from sapien.progression.minting import ContractsNotDeployed

    member = make_member("ada")
    wallets[member.id] = MEMBER_ADDRESS
    award(member.id)
    with pytest.raises(ContractsNotDeployed):
        mint_badge(mint_request(member.id).id)
    assert mint_request(member.id).state == "pending"


def test_ready_badges_mint_together_pipelined_once_each(chain, wallets, make_member):
    from jobs.chain import mint_ready_badges
    from tests.chain.conftest import OTHER_ADDRESS, THIRD_ADDRESS, new_member

    member = make_member("ada")
    others = [new_member("bob"), new_member("cyd")]
    for user_id, address in zip([member.id, *others], [MEMBER_ADDRESS, OTHER_ADDRESS, THIRD_ADDRESS], strict=True):
        wallets[user_id] = address
    award(member.id)
    award(member.id, "warming-up")
    for user_id in others:
        award(user_id)
    no_wallet = new_member("dee")
    award(no_wallet)
    # One of them was minted by an earlier life of the database: its mint reverts and still counts as minted.
    from sapien.chain.client import signer_address

    chain.transact(chain.contract("SapienBadge").functions.mint(OTHER_ADDRESS, others[0], "first-label"), signer_address())

    assert mint_ready_badges() == {"minted": 4}
    assert mint_ready_badges() == {}  # twice: nothing more (the member without a wallet waits)
    assert owner_count(chain) == 2 and owner_count(chain, OTHER_ADDRESS) == 1 and owner_count(chain, THIRD_ADDRESS) == 1
    assert mint_request(no_wallet).state == "pending"
    nonces = sorted(db.session.scalars(select(ChainTransaction.nonce).where(ChainTransaction.status == "confirmed")))
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))  # one nonce each, none skipped


def test_revoking_a_minted_badge_burns_its_token_once(chain, wallets, make_member, redis_conn):
    from rq import Queue
    from rq.serializers import JSONSerializer

    from jobs.chain import send_transaction
    from sapien.accounts import service as accounts
    from sapien.progression.awards import revoke_badge

    member = make_member("ada")
    moderator = accounts.sign_up(accounts.SignUp(username="mod", email="mod@example.org", password="correct horse battery"), now=utcnow(), role="moderator")
    wallets[member.id] = MEMBER_ADDRESS
    award(member.id)
    request = mint_request(member.id)
    assert mint_badge(request.id) == "minted" and owner_count(chain) == 1

    revoke_badge(request.award_id, actor_id=moderator.id, reason="Earned by a bot", now=utcnow())
    burn = db.session.scalar(select(ChainTransaction).where(ChainTransaction.kind == "badge_burn"))
    assert burn is not None and burn.status == "pending"
    assert f"chain-tx-{burn.id}" in Queue("chain", connection=redis_conn, serializer=JSONSerializer).get_job_ids()
    assert send_transaction(burn.id) == "confirmed"
    assert send_transaction(burn.id) == "confirmed"  # twice: burned once
    assert owner_count(chain) == 0
    with pytest.raises(Exception):  # noqa: B017 - the token is gone: ownerOf reverts
        chain.contract("SapienBadge").functions.ownerOf(badge_token_id(member.id, "first-label")).call()
