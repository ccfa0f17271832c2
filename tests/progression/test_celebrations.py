"""The celebrations ride on the htmx response of the request that earned them: a level-up dialog with what
the level unlocks, and a toast each for a badge earned, a quest completed and a streak milestone.

Work earns only once verified, and a settlement job pays it (a right gold answer too, seconds after its
verdict): the moments of paid work (labels counted, streak days) reach the member as notifications. A gold
verdict's own moments (gold accuracy quests) ride on the answer's response."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from sapien.database import utcnow
from sapien.extensions import db
from sapien.labeling import leases, packs
from sapien.progression import quests
from sapien.progression.models import MemberProgress
from tests.labeling.conftest import make_pack
from tests.labeling.test_views import start_work
from tests.progression.test_views import HX, create_quest


def _lease(body: str) -> int:
    return int(re.search(r'name="lease_id" value="(\d+)"', body).group(1))


def _active_yesterday(app, user_id: int, streak: int) -> None:
    """The member answered on each of the last `streak` days, up to yesterday."""
    with app.app_context():
        db.session.add(MemberProgress(user_id=user_id, current_streak=streak, longest_streak=streak,
                                      last_active_day=utcnow().date() - timedelta(days=1), timezone="UTC"))
        db.session.commit()


def _hold_gold_item(app, user_id: int, slug: str) -> None:
    """Lease the pack's gold item to the member (the work page resumes it): a right answer is verified at once."""
    with app.test_request_context():
        pack = packs.get_pack_by_slug(slug)
        gold_item = next(item for item in packs.pack_items(pack.id) if item.is_gold)
        leases.lease_item(user_id, gold_item.id, utcnow().replace(year=2100))


def _notifications(app, user_id: int) -> list[tuple[str, dict]]:
    from sapien.notifications.models import Notification

    with app.app_context():
        return [(row.kind, row.params) for row in db.session.scalars(select(Notification).where(Notification.user_id == user_id))]


def test_a_right_gold_answer_brings_its_gold_quest_at_once_and_its_label_moments_once_paid(app, make_member, tmp_path):
    from jobs.labeling import settle_rewards

    moderator = make_member(role="moderator")
    create_quest(app, moderator.id)  # label one item: counted once the answer is paid
    with app.app_context():
        quests.create_quest(quests.QuestDefinition(title="Sharp", period="daily", objective="gold_accuracy", target=1, accuracy_percent=100,
                                                   starts_at=utcnow() - timedelta(days=1), reward_xp=20), actor_id=moderator.id, now=utcnow())
    with app.test_request_context():
        slug = make_pack(tmp_path, items=3, gold=1, reward_points=10, reward_xp=5).slug
    ana = make_member()
    _active_yesterday(app, ana.id, 2)
    _hold_gold_item(app, ana.id, slug)
    lease = _lease(start_work(ana, slug))
    response = ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease, "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Right! That was a check item" in body and "Verified: paid with the next payout, in a few seconds." in body
    # The verdict's own moments: its quest, and the badge for a first quest.
    assert "toast--quest" in body and "Quest complete: Sharp" in body and "Badge earned: Quester" in body
    assert "First label" not in body and "Do one" not in body and "toast--streak" not in body  # nothing paid yet

    with app.app_context():
        assert settle_rewards() == 1
    notified = _notifications(app, ana.id)
    assert ("badge", {"badge": "first-label"}) in notified and ("streak_milestone", {"days": 3}) in notified
    assert ("answer_verified_points", {"count": 1, "amount": 10}) in notified and ("quest_complete", {"quest": "Do one"}) in notified
    bell = ana.client.get("/notifications").get_data(as_text=True)
    assert "You earned the badge “First label”." in bell and "3-day streak! Come back tomorrow to keep it going." in bell
    # The next answer (pending until verified) earns nothing new: no celebration repeats.
    again = ana.client.post(f"/packs/{slug}/work", data={"lease_id": _lease(body), "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
    assert "toast--celebrate" not in again.get_data(as_text=True)


def test_a_streak_that_is_no_milestone_is_not_celebrated(app, make_member, tmp_path):
    from jobs.labeling import settle_rewards

    with app.test_request_context():
        slug = make_pack(tmp_path, items=2, gold=1, reward_points=10, reward_xp=5).slug
    ana = make_member()
    _active_yesterday(app, ana.id, 3)  # today makes 4: no milestone
    _hold_gold_item(app, ana.id, slug)
    lease = _lease(start_work(ana, slug))
    ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease, "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
    with app.app_context():
        assert settle_rewards() == 1
        assert db.session.get(MemberProgress, ana.id).current_streak == 4
    notified = _notifications(app, ana.id)
    assert ("badge", {"badge": "first-label"}) in notified and "streak_milestone" not in [kind for kind, _params in notified]


def test_a_level_up_brings_the_dialog_with_its_emblem_and_what_it_unlocks(app, make_member, tmp_path):
    from tests.progression.helpers import accept

    moderator = make_member(role="moderator")
    quest_id = create_quest(app, moderator.id)
    with app.test_request_context():
        make_pack(tmp_path, items=1, name="Expert reviews", min_level=2)
        make_pack(tmp_path, items=1, name="Master reviews", min_level=3)
    member = make_member()
    with app.app_context():
        accept(member.id, utcnow())
    body = member.post(f"/quests/{quest_id}/claim", headers=HX).get_data(as_text=True)
    dialog = body[body.index("<dialog"):body.index("</dialog>")]
    assert 'class="modal levelup"' in dialog and "data-celebrate" in dialog
    assert "Level 2!" in dialog and "Level up! You reached level 2." in dialog
    assert 'src="/art/level/2.svg"' in dialog
    assert "Expert reviews" in dialog and "Master reviews" not in dialog
    assert re.search(r'<button type="submit" class="button" autofocus>Keep going</button>', dialog)
    assert 'method="dialog"' in dialog  # closes without a request
