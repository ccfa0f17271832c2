"""What one accepted answer costs in SQL statements: the hot path of the whole site, pinned so it only gets cheaper."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event, select

from jobs.labeling import settle_rewards
from sapien.extensions import db
from sapien.labeling import leases, submissions
from sapien.labeling.models import Submission
from sapien.ledger import service as ledger
from tests.conftest import verify_and_settle

from .conftest import NOW, make_pack, make_user

# An accepted answer, its pending reward, the quality hook and the listeners. It was 23 before the reward
# became one ledger posting (no key lookups), the streak multiplier stopped reading freezes and the member,
# and the result stopped reloading the submission; 14 while the answer was paid at once; 9 since it is paid
# when verified, by the settlement batch (the reward goes out with the submission's INSERT); 8 since the
# answer is judged before its row is written (it was inserted as pending review, then updated); 6 since quality
# decides the item in a job (the answer no longer locks the item and reads its answers); 5 on PostgreSQL since
# the answered lease is claimed in the statement that reads it; 4 for a member with a reputation since it is
# read with the answered lease.
ACCEPTED_ANSWER_STATEMENTS = 4


def give_reputation(member: int) -> None:
    """A reputation row, as any gold answer or review gives a member."""
    from sapien.database import unit_of_work
    from sapien.quality.reputation import apply_reputation

    with unit_of_work():
        apply_reputation(member, f"test:{member}", "gold", NOW, good=True)


@contextmanager
def counted_statements():
    statements: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_an_accepted_answer_costs_at_most_a_few_statements(ctx, tmp_path):
    pack = make_pack(tmp_path, items=4, reward_points=10, reward_xp=5)
    pack_id = pack.id
    member = make_user()
    # A first answer today starts the member's streak and progress rows; the figure is for the ones after it.
    first = leases.lease_next_item(member, pack.id, NOW)
    submissions.submit_answer(member, first.id, {"labels": ["pos"]}, now=NOW + timedelta(seconds=5))
    lease_id = leases.lease_next_item(member, pack.id, NOW + timedelta(seconds=10)).id
    give_reputation(member)
    db.session.expunge_all()  # nothing of the member cached from the setup: a request starts cold too

    with counted_statements() as statements:
        result = submissions.submit_answer(member, lease_id, {"labels": ["neg"]}, now=NOW + timedelta(seconds=20))

    assert result.status == "accepted" and (result.reward_state, result.points, result.xp) == ("pending", 10, 5)
    assert len(statements) <= ACCEPTED_ANSWER_STATEMENTS, "\n".join(statements)
    # Nothing is paid before verification; then paid exactly once per currency, with balances that match the entries.
    assert ledger.balance(member, "points") == 0
    verify_and_settle(pack_id=pack_id)
    assert ledger.balance(member, "points") == 20 == ledger.sum_of_entries(member, "points")
    assert ledger.balance(member, "xp") == 10 == ledger.sum_of_entries(member, "xp")
    submission = db.session.scalar(select(Submission).where(Submission.id == result.submission_id))
    assert (submission.paid_points, submission.paid_xp, submission.reward_state) == (10, 5, "paid")


# The same answer through the work page (htmx): the sign-in check, the answer, the next item, the
# rendered feedback and the live nav update. It was 32 before: besides the service's savings, the pack
# was looked up on its own, the claimed item read again, the active lease and the daily use read apart,
# and the member reloaded twice after the commits; 14 by the time the answer was paid when verified, 13
# since it is judged before its row is written, 12 since the nav's balances are read only where the bar is
# rendered (after an answer only its pending chip is swapped, read before the commit), 11 for a member with
# verified work behind them since their progress row comes with the answered lease, 10 since the next item's
# slot and its lease are taken in one statement on PostgreSQL, 8 since quality decides the item in a job, 7
# since the answered lease is claimed in the statement that reads it, 6 since the economy settings (the reward
# rates) come from the process's copy while their version in Redis holds, 5 since the nav's pending rewards
# are read with the next item, 4 since an ordinary next item is claimed in the statement that reads the
# member's state (active lease, daily use, restriction, pending rewards), 3 since the member's reputation is
# read with the answered lease.
ANSWER_REQUEST_STATEMENTS = 3


def test_an_answer_over_http_costs_at_most_a_few_statements(app, make_member, tmp_path):
    import re

    with app.test_request_context():
        slug = make_pack(tmp_path, items=4, reward_points=10, reward_xp=5).slug
    ana = make_member()
    headers = {"HX-Request": "true"}
    lease_of = re.compile(r'name="lease_id" value="(\d+)"')
    token = ana.csrf()
    lease_id = lease_of.search(ana.post(f"/packs/{slug}/work/start", headers=headers).get_data(as_text=True)).group(1)
    # A first answer, verified and paid, gives the member their streak and progress rows; the figure is for
    # the answers of a member who has worked before.
    warm = ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease_id, "label": "pos", "csrf_token": token}, headers=headers)
    lease_id = lease_of.search(warm.get_data(as_text=True)).group(1)
    with app.app_context():
        assert verify_and_settle() == 1
        give_reputation(ana.id)

    with app.app_context(), counted_statements() as statements:
        response = ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease_id, "label": "neg", "csrf_token": token}, headers=headers)

    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "Submitted and accepted." in text and "+10 pending" in text and 'id="nav-pending-slot" hx-swap-oob="true"' in text
    assert len(statements) <= ANSWER_REQUEST_STATEMENTS, "\n".join(statements)


# A right gold answer is judged and moves its member's reputation in its own transaction, then progression
# reacts to the verdict after the commit. It was 19: the lease was claimed apart, the row was written then
# marked paid, and the reputation move looked its key up, then wrote its event inside a savepoint; 14 while
# the answer was paid in its own request (a ledger posting, then progression and the boards reacting to it);
# 8 since the settlement batch pays it like every verified answer.
GOLD_ANSWER_STATEMENTS = 8


def test_a_right_gold_answer_is_verified_at_once_in_a_few_statements(ctx, tmp_path):
    from sapien.labeling.models import Item

    pack = make_pack(tmp_path, items=2, gold=3, reward_points=10, reward_xp=5)
    member = make_user()
    gold_ids = list(db.session.scalars(select(Item.id).where(Item.pack_id == pack.id, Item.is_gold).order_by(Item.id)))
    # A first gold answer gives the member their reputation, streak and progress rows.
    first = leases.lease_item(member, gold_ids[0], NOW)
    submissions.submit_answer(member, first.id, {"labels": ["pos"]}, now=NOW + timedelta(seconds=5))
    lease_id = leases.lease_item(member, gold_ids[1], NOW + timedelta(seconds=10)).id
    db.session.expunge_all()

    with counted_statements() as statements:
        result = submissions.submit_answer(member, lease_id, {"labels": ["pos"]}, now=NOW + timedelta(seconds=20))

    assert result.status == "accepted" and (result.reward_state, result.points, result.xp) == ("verified", 10, 5)
    assert len(statements) <= GOLD_ANSWER_STATEMENTS, "\n".join(statements)
    submission = db.session.scalar(select(Submission).where(Submission.id == result.submission_id))
    assert (submission.reward_state, submission.paid_points) == ("verified", 10) and submission.verified_at is not None
    assert ledger.balance(member, "points") == 0
    assert settle_rewards() == 2  # both right gold answers, in the next batch
    assert ledger.balance(member, "points") == 20 == ledger.sum_of_entries(member, "points")
    assert ledger.balance(member, "xp") == 10 == ledger.sum_of_entries(member, "xp")
