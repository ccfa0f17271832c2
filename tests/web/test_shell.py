"""The web shell: page vs fragment, errors in both forms, flashes through htmx, headers."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_token_from

HX = {"HX-Request": "true"}


def test_direct_load_is_a_full_page_and_htmx_gets_the_fragment(make_member):
    ana = make_member("ana")
    page = ana.client.get("/dashboard")
    fragment = ana.client.get("/dashboard", headers=HX)
    assert "<html" in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and "Hello, ana" in body
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]


def test_boosted_navigation_gets_the_whole_page(make_member):
    ana = make_member("ana")
    response = ana.client.get("/dashboard", headers={**HX, "HX-Boosted": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_nav_shows_level_xp_bar_and_balances(app, make_member):
    from datetime import UTC, datetime

    from sapien.ledger import service as ledger

    ana = make_member("ana")
    with app.app_context():
        ledger.credit(ana.id, "xp", 350, kind="k", key="xp", now=datetime.now(UTC))
        ledger.credit(ana.id, "points", 1234, kind="k", key="pts", now=datetime.now(UTC))
    page = ana.client.get("/dashboard").get_data(as_text=True)
    assert "Lv 3" in page  # level 3 starts at 300 XP
    assert '<progress class="xpbar" max="100" value="16"' in page  # 50 of the 300 XP between levels 3 and 4
    assert "1,234" in page


@pytest.mark.parametrize("headers", [{}, HX])
def test_404_as_page_and_as_fragment(client, headers):
    response = client.get("/no/such/page", headers=headers)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Page not found" in body
    assert ("<html" in body) is (not headers)
    if headers:
        assert response.headers["HX-Retarget"] == "#main"


def test_403_page(make_member):
    response = make_member("ana").client.get("/moderation/jobs", headers=HX)
    assert response.status_code == 403
    assert "You do not have access to this page" in response.get_data(as_text=True)


def test_500_is_a_page_and_logs(make_app):
    app = make_app()

    @app.get("/__boom")
    def boom():
        raise RuntimeError("kaboom")

    response = app.test_client().get("/__boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.get_data(as_text=True)


def test_security_headers_and_csp_allow_only_our_scripts(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_inline_scripts_or_styles_in_pages(make_member):
    import re

    page = make_member("ana").client.get("/dashboard").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert " style=" not in page and "<style" not in page
    assert "/static/vendor/htmx.min.js" in page


def test_htmx_is_served_from_our_origin(client):
    response = client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200 and b"htmx" in response.data


def test_flash_arrives_out_of_band_with_an_htmx_fragment(make_app):
    from sapien.web import flash_message, render_page_or_fragment

    app = make_app()

    @app.get("/__flash")
    def flash_view():
        flash_message("Saved!")
        return render_page_or_fragment("errors/error.html", "errors/fragments/error.html", code=200, title="t", hint="h")

    body = app.test_client().get("/__flash", headers=HX).get_data(as_text=True)
    assert 'hx-swap-oob="beforeend:#flashes"' in body and "Saved!" in body
    quiet = app.test_client().get("/login", headers=HX).get_data(as_text=True)
    assert "hx-swap-oob" not in quiet  # no flashes, nothing out of band: toasts on screen stay


def test_csrf_token_in_htmx_header_is_accepted(client):
    token = csrf_token_from(client, "/signup")
    response = client.post("/login", data={"login": "x", "password": "y"}, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 422  # validated normally: the header token was accepted


def test_language_picker_sets_cookie_and_member_preference(app, client, make_member):
    token = csrf_token_from(client, "/")
    response = client.post("/language?next=/login", data={"locale": "fr", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert 'lang="fr"' in client.get("/login").get_data(as_text=True)

    ana = make_member("ana")
    ana.post("/language", {"locale": "id"})
    assert 'lang="id"' in ana.client.get("/dashboard").get_data(as_text=True)
    assert ana.post("/language", {"locale": "klingon"}).status_code == 303  # refused with a flash, no crash


def test_browser_language_is_the_default(client):
    page = client.get("/login", headers={"Accept-Language": "id-ID,id;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert 'lang="id"' in page


def test_french_page_is_translated(client):
    page = client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Mot de passe" in page


def test_dates_follow_the_members_time_zone(app, make_member):
    from datetime import UTC, datetime

    from sapien.accounts import service as accounts
    from sapien.ledger import service as ledger

    ana = make_member("ana")
    with app.app_context():
        ledger.credit(ana.id, "points", 5, kind="k", key="k", now=datetime(2026, 1, 5, 23, 30, tzinfo=UTC))
        user = accounts.get_user(ana.id)
        accounts.update_profile(ana.id, display_name="Ana", bio="", country=None, timezone="Asia/Tokyo", locale="en", hide_from_boards=False, languages=app.config["LANGUAGES"])
        assert user.id == ana.id
    page = ana.client.get("/dashboard").get_data(as_text=True)
    assert "1/6/26, 8:30" in page  # 23:30 UTC is 08:30 the next morning in Tokyo


def test_optional_fields_are_not_marked_required_or_invalid(make_member):
    # WTForms renders a None attribute as the text "None": `required="None"` would make every field mandatory.
    page = make_member("ana").client.get("/settings").get_data(as_text=True)
    assert '="None"' not in page
    bio = re.search(r"<textarea[^>]*name=\"bio\"[^>]*>", page).group(0)
    assert "required" not in bio and "aria-invalid" not in bio
