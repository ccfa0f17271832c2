from sapien.labeling import leases, submissions
from sapien.ledger import service as ledger
from tests.conftest import verify_and_settle

from .conftest import NOW, make_pack, make_user


def test_lease_submit_and_pay(ctx, tmp_path):
    pack = make_pack(tmp_path, items=3, reward_points=10, reward_xp=4, difficulty="intermediate")
    user = make_user()
    lease = leases.lease_next_item(user, pack.id, NOW)
    assert leases.lease_next_item(user, pack.id, NOW).id == lease.id
    result = submissions.submit_answer(user, lease.id, {"labels": ["pos"]}, now=NOW)
    assert result.status == "accepted" and result.points == 15 and result.xp == 6
    assert ledger.balance(user, "points") == 0  # pending until the answer is verified
    verify_and_settle(pack_id=pack.id)
    assert ledger.balance(user, "points") == 15
