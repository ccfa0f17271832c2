"""Bad input anywhere gets a clear answer, never a 500: ids no row can have, NUL characters, empty choices,
and a walk over every route with junk in its URL, query string and form (where every refusal, a 4xx,
leaves the database unchanged)."""

from __future__ import annotations

import itertools
import re

import pytest
from werkzeug.routing import IntegerConverter

from tests.labeling.conftest import make_pack
from tests.web.route_walk import changed_tables, fingerprint

HUGE = "99999999999999999999"  # wider than the 32-bit id columns: used to reach the database as an error
JUNK = ["", "abc", "-1", "0", HUGE, "-" + HUGE, "1e309", "1.5", "x" * 5000, "<script>alert(1)</script>", "[]", '{"a":',
        "2026-13-45", "' or 1=1 --", "NaN", "ｅ"]
FIELD_NAME = re.compile(r'name="([a-zA-Z_][a-zA-Z0-9_-]*)"')


@pytest.fixture
def pack_slug(app, tmp_path):
    with app.test_request_context():
        return make_pack(tmp_path, items=3, gold=1).slug


def test_ids_no_row_can_have_are_not_found(make_member, pack_slug):
    ana = make_member()
    assert ana.client.get(f"/submissions/{HUGE}").status_code == 404
    assert ana.post(f"/packs/{pack_slug}/work", {"lease_id": HUGE}).status_code == 404
    assert ana.post(f"/packs/{pack_slug}/work/start").status_code == 303
    page = ana.client.get(f"/packs/{pack_slug}/work?feedback={HUGE}")
    assert page.status_code == 200 and 'name="lease_id"' in page.get_data(as_text=True)


def test_nul_characters_are_refused_with_a_message(make_member):
    ana = make_member()
    response = ana.client.get("/guilds/?q=a%00b")
    assert response.status_code == 400
    assert "cannot contain the NUL character" in response.get_data(as_text=True)
    assert ana.post("/settings", {"display_name": "Ana\x00"}).status_code == 400


def test_an_empty_required_choice_is_a_form_error(make_member, pack_slug):
    moderator = make_member(role="moderator")
    response = moderator.post(f"/manage/packs/{pack_slug}/status", {"status": ""}, follow_redirects=True)
    assert response.status_code == 200
    assert "Choose open, paused or closed." in response.get_data(as_text=True)


def _url(rule, values: dict) -> str | None:
    try:
        return rule.build(values, append_unknown=False)[1]
    except Exception:  # noqa: BLE001 - a rule this walk cannot fill
        return None


def test_every_route_answers_junk_without_a_server_error(app, make_member, pack_slug):
    junk = itertools.cycle(JUNK)
    failures = []
    for member in (make_member(role="moderator"), make_member()):
        names: set[str] = set()
        token = member.csrf()
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if rule.endpoint == "static" or "logout" in rule.rule or rule.rule == "/healthz":
                continue
            for filler in ("real", "junk"):
                values = {}
                for name, converter in rule._converters.items():
                    if isinstance(converter, IntegerConverter):
                        values[name] = 1 if filler == "real" else 2**31 - 1
                    else:
                        values[name] = pack_slug if filler == "real" else next(junk)
                url = _url(rule, values)
                if url is None:
                    continue
                query = {name: next(junk) for name in ("page", "q", "sort", "feedback", "type", "board", "status")}
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    if method == "GET":
                        response = member.client.get(url, query_string=query)
                        if response.mimetype == "text/html":
                            names.update(FIELD_NAME.findall(response.get_data(as_text=True)))
                    else:
                        form = {name: next(junk) for name in sorted(names)}
                        before = fingerprint(app)
                        response = member.client.open(url, method=method, data={**form, "csrf_token": token},
                                                      headers={"HX-Request": "true"} if filler == "junk" else {})
                        # A refused request (any 4xx) leaves the database as it was.
                        if 400 <= response.status_code < 500 and (changed := changed_tables(before, fingerprint(app))):
                            failures.append(f"{member.username} {method} {url} → {response.status_code} wrote to {changed}")
                    response.close()
                    if response.status_code >= 500:
                        failures.append(f"{member.username} {method} {url} → {response.status_code}")
    assert not failures, failures


def test_a_streak_freeze_without_the_points_is_a_message(make_member):
    ana = make_member()
    response = ana.post("/streak/freeze", follow_redirects=True)
    assert response.status_code == 200
    assert "A streak freeze costs 200 points, and you have fewer." in response.get_data(as_text=True)


def test_a_nul_in_a_path_segment_is_refused_on_every_route_with_a_message(app, make_member, pack_slug):
    moderator = make_member(role="moderator")
    token = moderator.csrf()
    checked, failures = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        text_segments = [name for name, converter in rule._converters.items() if not isinstance(converter, IntegerConverter)]
        if rule.endpoint == "static" or not text_segments:
            continue
        values = {name: (1 if isinstance(converter, IntegerConverter) else pack_slug) for name, converter in rule._converters.items()}
        for name in text_segments:
            url = _url(rule, {**values, name: "a\x00b"})
            if url is None:  # an `any(…)` segment cannot hold it at all
                continue
            assert "%00" in url
            method = "GET" if "GET" in rule.methods else "POST"
            response = moderator.client.open(url, method=method, data={"csrf_token": token})
            checked.append(url)
            if response.status_code != 400 or "cannot contain the NUL character" not in response.get_data(as_text=True):
                failures.append(f"{method} {url} → {response.status_code}")
    assert len(checked) >= 17
    assert not failures, failures


def test_a_json_body_with_values_that_are_not_text_is_a_clear_400(app, make_member):
    from sapien.accounts import service as accounts
    from sapien.database import utcnow
    from sapien.guilds import founding as guilds
    from sapien.ledger import service as ledger

    ana = make_member("ana")
    with app.test_request_context():
        ledger.credit(ana.id, "xp", 300, kind="labeling:image_classification", key="json-test", now=utcnow())
        slug = guilds.create_guild(ana.id, guilds.GuildDraft(name="Owls"), utcnow()).slug
    headers = {"X-CSRFToken": ana.csrf()}
    for path, body in [
        ("/settings", {"display_name": 5, "timezone": "UTC", "locale": "en"}),
        ("/settings", {"display_name": {"a": "b"}}),
        ("/settings", [1, 2]),
        (f"/guilds/{slug}/settings", {"name": 123, "join_policy": "open", "min_level": "1", "min_reputation": "0"}),
        (f"/guilds/{slug}/settings", {"name": ["Owls", None]}),
    ]:
        response = ana.client.post(path, json=body, headers=headers)
        assert response.status_code == 400, (path, body, response.status_code)
        assert "Send the form's fields as text." in response.get_data(as_text=True)
    with app.app_context():
        assert accounts.get_by_username("ana").display_name == "ana"
    # Text fields in JSON still work as a form would.
    response = ana.client.post("/settings", json={"display_name": "Ana", "timezone": "UTC", "locale": "en"}, headers=headers)
    assert response.status_code == 303
