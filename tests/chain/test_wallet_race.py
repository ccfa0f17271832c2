"""Two members linking one wallet at the same moment (PostgreSQL): one wins, the other is told why."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from sapien.chain.siwe import SiweError
from tests.chain.conftest import NOW, new_member, signed_message, site


def waiting_on_a_lock(app) -> bool:
    from sapien.extensions import db

    with app.app_context():
        try:
            return bool(db.session.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )))
        finally:
            db.session.remove()


@pytest.mark.postgres_only
def test_two_members_linking_one_wallet_at_once_one_wins(app, wallet_key):
    from sapien.chain import wallets
    from sapien.database import unit_of_work
    from sapien.extensions import db

    with app.app_context():
        ana, bob = new_member("ana"), new_member("bob")
        messages = {ana: signed_message(ana, wallet_key), bob: signed_message(bob, wallet_key)}
        db.session.remove()
    first_linked, release = threading.Event(), threading.Event()
    outcomes: dict[int, object] = {}

    def link_first() -> None:
        # Ana's link is written but held uncommitted until Bob's insert is waiting on her row's unique key:
        # Bob's own check saw no owner, so only the database can refuse him.
        with app.app_context():
            try:
                with unit_of_work():
                    outcomes[ana] = wallets.link_wallet(ana, *messages[ana], site(), NOW)
                    first_linked.set()
                    release.wait(timeout=20)
            except Exception as error:  # noqa: BLE001 - reported below
                outcomes[ana] = error
            finally:
                first_linked.set()
                db.session.remove()

    def link_second() -> None:
        first_linked.wait(timeout=20)
        with app.app_context():
            try:
                outcomes[bob] = wallets.link_wallet(bob, *messages[bob], site(), NOW)
            except Exception as error:  # noqa: BLE001 - reported below
                outcomes[bob] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=link_first), threading.Thread(target=link_second)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while not waiting_on_a_lock(app) and time.monotonic() < deadline and threads[1].is_alive():
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert isinstance(outcomes[ana], wallets.LinkResult), outcomes[ana]
    assert isinstance(outcomes[bob], SiweError), outcomes[bob]
    assert "already linked to another member" in str(outcomes[bob])
    with app.app_context():
        assert wallets.wallet_of(ana) == wallet_key.address
        assert wallets.wallet_of(bob) is None


@pytest.mark.postgres_only
def test_one_signed_message_sent_twice_at_once_links_once(app, wallet_key):
    from sapien.chain import wallets
    from sapien.extensions import db

    with app.app_context():
        ana = new_member("ana")
        message = signed_message(ana, wallet_key)
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def send() -> None:
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                outcomes.append(wallets.link_wallet(ana, *message, site(), NOW))
            except SiweError as error:
                outcomes.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(isinstance(outcome, wallets.LinkResult) for outcome in outcomes) == 1
    assert ["already used" in str(outcome) for outcome in outcomes if isinstance(outcome, SiweError)] == [True]
