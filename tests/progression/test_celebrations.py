"""The celebrations ride on the htmx response of the request that earned them: a level-up dialog with what
the level unlocks, and a toast each for a badge earned, a quest completed and a streak milestone.

Work earns only once verified: a right gold answer is verified (and paid) in its own request, so these tests
answer gold items; other answers are paid by the settlement job, whose moments reach the member as
notifications."""

from __future__ import annotations

import re
from datetime import timedelta

from sapien.database import utcnow
from sapien.extensions import db
from sapien.labeling import leases, packs
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
    """Lease the pack's gold item to the member (the work page resumes it): a right answer is paid at once."""
    with app.test_request_context():
        pack = packs.get_pack_by_slug(slug)
        gold_item = next(item for item in packs.pack_items(pack.id) if item.is_gold)
        leases.lease_item(user_id, gold_item.id, utcnow().replace(year=2100))


def test_a_right_gold_answer_brings_the_badge_quest_and_streak_moments(app, make_member, tmp_path):
    moderator = make_member(role="moderator")
    create_quest(app, moderator.id)
    with app.test_request_context():
        slug = make_pack(tmp_path, items=3, gold=1, reward_points=10, reward_xp=5).slug
    ana = make_member()
    _active_yesterday(app, ana.id, 2)
    _hold_gold_item(app, ana.id, slug)
    lease = _lease(start_work(ana, slug))
    response = ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease, "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<div id="flashes" hx-swap-oob="beforeend">' in body
    assert "toast--badge" in body and "Badge earned: First label" in body and "/badges/art/first-label.svg" in body
    assert "toast--quest" in body and "Quest complete: Do one" in body
    assert "toast--streak" in body and "3-day streak!" in body
    # The next answer (pending until verified) earns nothing new: no celebration repeats.
    again = ana.client.post(f"/packs/{slug}/work", data={"lease_id": _lease(body), "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
    assert "toast--celebrate" not in again.get_data(as_text=True)


def test_a_streak_that_is_no_milestone_is_not_celebrated(app, make_member, tmp_path):
    with app.test_request_context():
        slug = make_pack(tmp_path, items=2, gold=1, reward_points=10, reward_xp=5).slug
    ana = make_member()
    _active_yesterday(app, ana.id, 3)  # today makes 4: no milestone
    _hold_gold_item(app, ana.id, slug)
    lease = _lease(start_work(ana, slug))
    body = ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease, "label": "pos", "csrf_token": ana.csrf()}, headers=HX).get_data(as_text=True)
    assert "toast--badge" in body and "toast--streak" not in body


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
