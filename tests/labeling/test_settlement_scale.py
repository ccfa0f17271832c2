"""Many verified answers settle exactly once on PostgreSQL: every answer paid, one ledger entry per answer
and currency, balances equal to the entries. (How fast 100,000 settle is measured by `make bench`,
bench/settlement.py, beside a bare insert of the same entries; not timed here.)
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bench.settlement import seed_verified_answers
from sapien.extensions import db
from sapien.labeling.models import Submission
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry

from .conftest import NOW, make_pack

MEMBERS = 20
ITEMS = 250  # every member answered every item: 5,000 answers


@pytest.mark.postgres_only
def test_thousands_of_verified_answers_settle_once(ctx, tmp_path):
    from jobs.labeling import settle_rewards

    pack = make_pack(tmp_path, items=0, reward_points=3, reward_xp=2)
    members = seed_verified_answers(pack.id, members=MEMBERS, items=ITEMS, now=NOW)
    assert db.session.scalar(select(func.count()).select_from(Submission).where(Submission.reward_state == "verified")) == MEMBERS * ITEMS

    assert settle_rewards() == MEMBERS * ITEMS
    assert settle_rewards() == 0  # run twice: nothing more

    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 2 * MEMBERS * ITEMS
    assert db.session.scalar(select(func.count()).select_from(Submission).where(Submission.reward_state != "paid")) == 0
    assert ledger.find_mismatched_balances() == []
    assert ledger.balance(members[0], "points") == 3 * ITEMS and ledger.balance(members[-1], "xp") == 2 * ITEMS
