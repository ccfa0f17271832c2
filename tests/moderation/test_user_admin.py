"""User administration: find a member, change a role, ban and unban, from the page and from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from sapien.accounts import service as accounts
from sapien.moderation.models import AuditLog
from tests.accounts.test_views import errors_in

ROOT = Path(__file__).resolve().parents[2]


def audit_rows(app, user_id: int) -> list[tuple]:
    from sapien.extensions import db

    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.target == f"user:{user_id}").order_by(AuditLog.id))
        return [(row.actor_id, row.action, row.reason) for row in rows]


def cached_user_row(app, redis_conn, user_id: int) -> bytes | None:
    from sapien.member_cache import USER_ROW, value_key

    with app.app_context():
        return redis_conn.get(value_key(user_id, USER_ROW))


def signed_in(member) -> bool:
    return member.client.get("/dashboard").status_code == 200


def test_a_moderator_finds_a_member_and_bans_them_from_the_page_at_once(app, make_member, redis_conn):
    ana = make_member("ana")
    moderator = make_member("mod", role="moderator")
    assert signed_in(ana) and cached_user_row(app, redis_conn, ana.id) is not None  # the row is cached now
    found = moderator.client.get("/moderation/users?q=AN").get_data(as_text=True)
    assert "@ana" in found and "@mod" not in found
    fragment = moderator.client.get("/moderation/users?q=ana", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="user-list"' in fragment and "<html" not in fragment
    page = moderator.client.get(f"/moderation/users/{ana.id}").get_data(as_text=True)
    assert "Ban from the site" in page and "Change the role" not in page  # moderators do not change roles
    fragment = moderator.client.get(f"/moderation/users/{ana.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="user-admin"' in fragment and "Ban from the site" in fragment and "<html" not in fragment
    refused = moderator.post(f"/moderation/users/{ana.id}/ban", {"reason": "  "})
    assert refused.status_code == 422 and "Give a reason: it goes into the audit log." in errors_in(refused)
    assert signed_in(ana)
    response = moderator.post(f"/moderation/users/{ana.id}/ban", {"reason": "spam links"})
    assert response.status_code == 303 and response.headers["Location"] == f"/moderation/users/{ana.id}"
    assert not signed_in(ana)  # the very next request: the cached row was marked stale on commit
    login = ana.client.post("/login", data={"login": "ana", "password": ana.password, "csrf_token": ana.csrf("/login")})
    assert login.status_code == 422 and "This account is suspended." in errors_in(login)
    page = moderator.client.get(f"/moderation/users/{ana.id}").get_data(as_text=True)
    assert "Banned" in page and "spam links" in page and "Lift the ban" in page
    response = moderator.post(f"/moderation/users/{ana.id}/unban", {"reason": "appeal accepted"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == f"/moderation/users/{ana.id}"
    assert audit_rows(app, ana.id) == [(moderator.id, "user.ban", "spam links"), (moderator.id, "user.unban", "appeal accepted")]
    login = ana.client.post("/login", data={"login": "ana", "password": ana.password, "csrf_token": ana.csrf("/login")})
    assert login.status_code == 303


def test_a_ban_from_the_command_line_in_another_process_signs_the_member_out_at_once(app, make_member, redis_conn):
    ana = make_member("ana")
    assert signed_in(ana) and cached_user_row(app, redis_conn, ana.id) is not None
    env = {**os.environ, "SAPIEN_TEST_OVERRIDES": json.dumps(app.config["TEST_OVERRIDES"])}

    def flask(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "tests.web.gunicorn_app", "users", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    result = flask("ban", "ana", "--reason", "chargeback fraud")
    assert result.returncode == 0, result.stderr
    assert "ana is banned." in result.stdout
    assert not signed_in(ana)
    again = flask("ban", "ana", "--reason", "twice")
    assert again.returncode == 1 and "This member is already banned." in again.stderr
    assert flask("ban", "nobody", "--reason", "x").returncode == 1
    assert flask("unban", "ana", "--reason", "cleared").returncode == 0
    assert flask("role", "ana", "moderator").returncode == 0
    assert audit_rows(app, ana.id) == [(None, "user.ban", "chargeback fraud"), (None, "user.unban", "cleared"),
                                       (None, "user.role", "member → moderator")]
    with app.app_context():
        assert accounts.get_by_username("ana").role == "moderator"


def test_who_may_change_whom(app, make_member):
    member = make_member("plain")
    other_mod = make_member("mod2", role="moderator")
    moderator = make_member("mod", role="moderator")
    admin = make_member("boss", role="admin")
    other_admin = make_member("boss2", role="admin")
    # Members see nothing; moderators cannot touch their peers, those above them, or themselves.
    assert member.client.get("/moderation/users").status_code == 403
    assert member.post(f"/moderation/users/{other_mod.id}/ban", {"reason": "x"}).status_code == 403
    for target in (other_mod, admin, moderator):
        assert moderator.post(f"/moderation/users/{target.id}/ban", {"reason": "x"}).status_code == 403
        assert "Ban from the site" not in moderator.client.get(f"/moderation/users/{target.id}").get_data(as_text=True)
    assert moderator.post(f"/moderation/users/{member.id}/role", {"role": "moderator"}).status_code == 403
    # Admins change roles of those below them, up to admin, and never their own or another admin's.
    page = admin.client.get(f"/moderation/users/{member.id}").get_data(as_text=True)
    assert "Change the role" in page and "Ban from the site" in page
    response = admin.post(f"/moderation/users/{member.id}/role", {"role": "reviewer", "reason": "steady quality"})
    assert response.status_code == 303
    same = admin.post(f"/moderation/users/{member.id}/role", {"role": "reviewer"})
    assert same.status_code == 422 and "This member already has that role." in errors_in(same)
    unknown = admin.post(f"/moderation/users/{member.id}/role", {"role": "overlord"})
    assert unknown.status_code == 422 and "Choose an option from the list." in errors_in(unknown)
    assert admin.post(f"/moderation/users/{other_mod.id}/ban", {"reason": "abuse"}).status_code == 303
    for target in (admin, other_admin):
        assert admin.post(f"/moderation/users/{target.id}/role", {"role": "member"}).status_code == 403
        assert admin.post(f"/moderation/users/{target.id}/ban", {"reason": "x"}).status_code == 403
    assert admin.client.get("/moderation/users/2147483647").status_code == 404
    assert audit_rows(app, member.id) == [(admin.id, "user.role", "member → reviewer: steady quality")]
    with app.app_context():
        assert accounts.get_by_username("plain").role == "reviewer"
        assert accounts.get_by_username("boss2").role == "admin" and not accounts.get_by_username("boss2").is_banned


def test_the_members_link_is_in_the_nav_for_moderators_only(make_member):
    assert "/moderation/users" in make_member("mod", role="moderator").client.get("/dashboard").get_data(as_text=True)
    assert "/moderation/users" not in make_member("plain").client.get("/dashboard").get_data(as_text=True)
