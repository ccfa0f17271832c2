"""No state change on GET, and none without a CSRF token (RELIABILITY.md §A 1).

- Every GET route, as a page and as an htmx fragment, for every role and for a visitor, with its ids filled
  from real rows: no writing statement reaches the database.
- Every POST route, from a signed-in member, without the token: 400 (401 for the key-authenticated /api/v1)
  and the database unchanged.
"""

from __future__ import annotations

from sapien.extensions import db
from tests.web.route_walk import HX, DatabaseWrites, build_world, changed_tables, fingerprint, walkable


def test_no_get_route_writes_to_the_database(app, make_member, tmp_path):
    world, members = build_world(app, make_member, tmp_path)
    before = fingerprint(app)
    clients = {role: member.client for role, member in members.items()} | {"visitor": app.test_client()}
    failures, visited = [], 0
    rules = [rule for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule) if "GET" in rule.methods and walkable(rule)]
    with app.app_context():
        urls = [world.url(rule) for rule in rules]
        engine = db.engine
    with DatabaseWrites(engine) as writes:
        for role, client in clients.items():
            for url in urls:
                if url is None:
                    continue
                # Fragments for two roles: the same views answer them, and the walk stays quick.
                for headers in ({}, HX) if role in ("member", "moderator") else ({},):
                    response = client.get(url, headers=headers)
                    response.close()
                    visited += 1
                    if writes.statements:
                        failures.append(f"{role} GET {url} {headers} → {response.status_code}: {writes.statements}")
                        writes.statements.clear()
    assert not failures, "\n".join(failures)
    assert changed_tables(before, fingerprint(app)) == []
    assert visited >= len(clients) * 40  # the walk really went round


def test_the_work_page_takes_no_lease_until_the_member_posts(app, make_member, tmp_path):
    world, members = build_world(app, make_member, tmp_path)
    bea = make_member()
    before = fingerprint(app)
    page = bea.client.get(f"/packs/{world.pack_slug}/work").get_data(as_text=True)
    assert 'name="lease_id"' not in page and 'hx-trigger="load, submit"' in page
    assert changed_tables(before, fingerprint(app)) == []
    fragment = bea.post(f"/packs/{world.pack_slug}/work/start", headers=HX).get_data(as_text=True)
    assert 'name="lease_id"' in fragment and "<html" not in fragment
    assert "leases" in changed_tables(before, fingerprint(app))


def test_no_post_route_without_a_csrf_token_is_accepted_or_writes(app, make_member, tmp_path):
    world, members = build_world(app, make_member, tmp_path)
    ana, moderator = members["member"], members["moderator"]
    before = fingerprint(app)
    failures, posted = [], 0
    rules = [rule for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule) if "POST" in rule.methods and walkable(rule)]
    with app.app_context():
        urls = [(rule, world.url(rule)) for rule in rules]
        engine = db.engine
    with DatabaseWrites(engine) as writes:
        for member in (ana, moderator):
            for rule, url in urls:
                if url is None:
                    failures.append(f"cannot build {rule.rule}")
                    continue
                # The client API (/api/v1) takes a key, never the session cookie: without one it answers 401.
                expected = 401 if rule.rule.startswith("/api/v1/") else 400
                for headers in ({}, HX):
                    response = member.client.post(url, data={"label": "pos", "name": "Forged"}, headers=headers)
                    response.close()
                    posted += 1
                    if response.status_code != expected or writes.statements:
                        failures.append(f"{member.username} POST {url} {headers} → {response.status_code}: {writes.statements}")
                        writes.statements.clear()
    assert not failures, "\n".join(failures)
    assert changed_tables(before, fingerprint(app)) == []
    assert posted >= 2 * 2 * 40
