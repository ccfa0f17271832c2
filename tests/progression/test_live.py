"""Live updates come from events sent after the commit: a rolled-back change shows nothing."""

from __future__ import annotations

import pytest
from flask import g
from flask_login import login_user

from tests.quality.conftest import NOW, make_user


def test_a_rolled_back_notification_does_not_ring_the_bell(app):
    from sapien.accounts.models import User
    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.notifications.models import Notification
    from sapien.notifications.service import notify

    with app.test_request_context("/"):
        user_id = make_user()
        login_user(db.session.get(User, user_id))
        with pytest.raises(RuntimeError), unit_of_work():
            notify(user_id, "level_up", {"level": 2}, key="rolled-back", now=NOW)
            raise RuntimeError("the request fails after notifying")
        assert db.session.query(Notification).count() == 0
        assert not getattr(g, "member_notified", False)  # no bell swapped in for a notification that is not there
        with unit_of_work():
            notify(user_id, "level_up", {"level": 2}, key="kept", now=NOW)
            assert not getattr(g, "member_notified", False)  # not before the commit either
        assert g.member_notified


def test_the_bell_rings_in_the_htmx_response_only_after_the_commit(app):
    from sapien.accounts.models import User
    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.notifications.service import notify

    with app.test_request_context("/", headers={"HX-Request": "true"}):
        user_id = make_user()
        login_user(db.session.get(User, user_id))
        with pytest.raises(RuntimeError), unit_of_work():
            notify(user_id, "level_up", {"level": 2}, key="rolled-back", now=NOW)
            raise RuntimeError("the request fails after notifying")
        response = app.process_response(app.make_response("<p>ok</p>"))
        assert 'id="bell"' not in response.get_data(as_text=True)
