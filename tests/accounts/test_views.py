"""Sign-up, login, logout, settings and session revocation, through HTTP."""

from __future__ import annotations

import html
import re

import pytest

from sapien.accounts import service as accounts
from sapien.extensions import db
from tests.conftest import csrf_token_from


def signup(client, **overrides):
    data = {
        "username": "ana_lima",
        "email": "ana@example.org",
        "password": "a long passphrase",
        "confirm": "a long passphrase",
        "country": "BR",
        "timezone": "America/Sao_Paulo",
        "csrf_token": csrf_token_from(client, "/signup"),
    }
    data.update(overrides)
    return client.post("/signup", data=data)


def errors_in(response) -> str:
    """Every error message shown in the page, as one string."""
    found = re.findall(r'class="(?:field__error|alert alert--error)"[^>]*>([^<]*)<', response.get_data(as_text=True))
    return " | ".join(html.unescape(message) for message in found)


def login(client, login="ana_lima", password="a long passphrase", **extra):
    return client.post("/login", data={"login": login, "password": password, "csrf_token": csrf_token_from(client), **extra})


def count_users(app) -> int:
    with app.app_context():
        return accounts.count_members()


def test_signup_lands_on_dashboard_signed_in(client):
    response = signup(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Hello, ana_lima" in page
    assert "Lv 1" in page


def test_signup_through_htmx_answers_with_hx_redirect(client):
    token = csrf_token_from(client, "/signup")
    response = client.post(
        "/signup",
        data={"username": "ben", "email": "ben@example.org", "password": "a long passphrase", "confirm": "a long passphrase", "timezone": "UTC"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/dashboard"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"username": "ab"}, "Usernames are 3 to 32 characters long."),
        ({"username": "x" * 33}, "Usernames are 3 to 32 characters long."),
        ({"username": "ana lima"}, "Use letters, digits, dots, dashes and underscores only."),
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"email": "a" * 250 + "@example.org"}, "That email address is too long."),
        ({"password": "short", "confirm": "short"}, "Passwords are 10 to 128 characters long."),
        ({"confirm": "something else entirely"}, "The passwords do not match."),
        ({"timezone": "Mars/Olympus_Mons"}, "Choose an option from the list."),
        ({"country": "XX"}, "Choose an option from the list."),
    ],
)
def test_signup_rejects_bad_input_with_a_message_and_writes_nothing(app, client, overrides, message):
    response = signup(client, **overrides)
    assert response.status_code == 422
    assert message in errors_in(response)
    assert count_users(app) == 0


def test_duplicate_username_is_case_insensitive_and_email_unique(app, client):
    assert signup(client).status_code == 303
    other = app.test_client()
    response = signup(other, username="ANA_LIMA", email="other@example.org")
    assert response.status_code == 422 and "That username is taken." in errors_in(response)
    response = signup(other, username="someone", email="ANA@example.org")
    assert response.status_code == 422 and "An account with that email already exists." in errors_in(response)
    assert count_users(app) == 1


def test_unicode_usernames_work(client):
    assert signup(client, username="Zoë_Ağaoğlu", email="zoe@example.org").status_code == 303
    assert "Hello, Zoë_Ağaoğlu" in client.get("/dashboard").get_data(as_text=True)


def test_post_without_csrf_token_is_refused_clearly(app, client):
    response = client.post("/signup", data={"username": "eve", "email": "eve@example.org", "password": "a long passphrase", "confirm": "a long passphrase"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert count_users(app) == 0


def test_login_by_username_or_email_and_wrong_password(app, client):
    signup(app.test_client())
    response = login(client, password="wrong password!")
    assert response.status_code == 422
    assert "That username or password is not right." in errors_in(response)
    assert login(client, login="ANA@example.org").status_code == 303


def test_login_follows_next_only_on_this_site(app, client):
    signup(app.test_client())
    response = client.post("/login?next=https://evil.example/steal", data={"login": "ana_lima", "password": "a long passphrase", "csrf_token": csrf_token_from(client)})
    assert response.headers["Location"] == "/dashboard"
    client.post("/logout", data={"csrf_token": csrf_token_from(client, "/dashboard")})
    response = client.post("/login?next=/settings", data={"login": "ana_lima", "password": "a long passphrase", "csrf_token": csrf_token_from(client)})
    assert response.headers["Location"] == "/settings"


def test_pages_need_login_and_send_you_back_after(client):
    response = client.get("/settings")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=/settings")


def test_logout_revokes_every_copy_of_the_session(app, client):
    signup(client)
    stolen = app.test_client()
    stolen.set_cookie("session", client.get_cookie("session").value)
    assert stolen.get("/dashboard").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token_from(client, "/dashboard")})
    assert stolen.get("/dashboard").status_code == 303
    assert client.get("/dashboard").status_code == 303


def test_logout_needs_post(client):
    signup(client)
    assert client.get("/logout").status_code == 405


def test_password_change_signs_out_other_sessions_but_keeps_this_one(app, client):
    signup(client)
    other = app.test_client()
    login(other)
    response = client.post(
        "/settings/password",
        data={"current_password": "a long passphrase", "new_password": "an even longer passphrase", "confirm": "an even longer passphrase", "csrf_token": csrf_token_from(client, "/settings")},
    )
    assert response.status_code == 303
    assert client.get("/dashboard").status_code == 200
    assert other.get("/dashboard").status_code == 303
    assert login(app.test_client(), password="an even longer passphrase").status_code == 303


def test_password_change_with_wrong_current_password(client):
    signup(client)
    response = client.post(
        "/settings/password",
        data={"current_password": "not my password", "new_password": "an even longer passphrase", "confirm": "an even longer passphrase", "csrf_token": csrf_token_from(client, "/settings")},
    )
    assert response.status_code == 422
    assert "Your current password is not right." in errors_in(response)


def test_ban_revokes_sessions_and_blocks_login(app, client):
    signup(client)
    with app.app_context():
        accounts.ban(accounts.get_by_username("ana_lima").id, "spam")
    assert client.get("/dashboard").status_code == 303
    response = login(app.test_client())
    assert response.status_code == 422 and "This account is suspended." in errors_in(response)


def test_settings_save_and_validate(app, client):
    signup(client)
    token = csrf_token_from(client, "/settings")
    response = client.post("/settings", data={"display_name": "Ana L.", "bio": "Hi", "country": "PT", "timezone": "Europe/Lisbon", "locale": "en", "csrf_token": token})
    assert response.status_code == 303
    with app.app_context():
        user = accounts.get_by_username("ana_lima")
        assert (user.display_name, user.country, user.timezone, user.locale) == ("Ana L.", "PT", "Europe/Lisbon", "en")
    response = client.post("/settings", data={"display_name": "", "bio": "x" * 501, "timezone": "UTC", "locale": "fr", "csrf_token": token})
    assert response.status_code == 422
    assert "Your display name cannot be empty." in errors_in(response)
    assert "At most 500 characters." in errors_in(response)


def test_settings_fragment_for_htmx(client):
    signup(client)
    response = client.get("/settings", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="settings-form"' in body and "<html" not in body


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_login_failures_are_rate_limited_per_address_and_account_name(app, monkeypatch, redis_conn):
    """Only failures count: a member's own successes never use up the budget."""
    monkeypatch.setitem(app.config, "LOGIN_FREE_FAILURES", 1000)  # the account's own backoff is tested below
    signup(app.test_client())
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    client = client_at(app, "10.0.0.1")
    for _ in range(3):
        assert login(app.test_client()).status_code == 303
    responses = [login(client, password="wrong password!") for _ in range(limit + 1)]
    assert [r.status_code for r in responses[:limit]] == [422] * limit
    assert responses[-1].status_code == 429
    assert "Too many requests" in responses[-1].get_data(as_text=True)
    assert login(client).status_code == 429  # the right password too, from there, for a while
    # The count lives in this test's Redis index, where every process of the site sees it (see
    # tests/web/test_rate_limits_across_processes.py), not in this process's memory.
    keys = [key.decode() for key in redis_conn.scan_iter(f"*{app.config['RATELIMIT_KEY_PREFIX']}*")]
    assert any("login-account" in key and "10.0.0.1|ana_lima" in key for key in keys), keys


def test_forty_wrong_passwords_from_four_addresses_check_only_a_few(app):
    """Per account, from every address: after LOGIN_FREE_FAILURES the account backs off and the password is not
    even checked; the right one is refused too until the lock ends, which doubles with every further failure."""
    from datetime import timedelta

    from sapien.accounts import login_throttle
    from sapien.database import utcnow

    signup(app.test_client())
    free = app.config["LOGIN_FREE_FAILURES"]
    checked = refused = 0
    for attempt in range(40):
        response = login(client_at(app, f"10.0.{attempt % 4}.1"), password="wrong password!")
        text = errors_in(response)
        if response.status_code == 422 and "That username or password is not right." in text:
            checked += 1
        elif response.status_code == 429 and "Too many failed sign-ins for this account. Try again in" in text:
            refused += 1
    assert (checked, refused) == (free, 40 - free)
    response = login(client_at(app, "10.9.9.9"))
    # The first lock is 30 seconds, a second or so of which the forty attempts took on a busy machine.
    assert response.status_code == 429 and re.search(r"Try again in (2\d|30) seconds\.", errors_in(response))
    # Once the lock has run out the right password works and clears the count; the backoff doubles meanwhile.
    with app.test_request_context():
        user_id = accounts.get_by_username("ana_lima").id
        later = utcnow() + timedelta(seconds=31)
        assert accounts.authenticate("ana_lima", "a long passphrase", later).id == user_id
        assert login_throttle.seconds_locked(f"user:{user_id}", later) == 0
        steps = []
        for _ in range(free + 4):
            with pytest.raises(accounts.AccountError):
                accounts.authenticate("ana_lima", "wrong password!", later)
            steps.append(login_throttle.seconds_locked(f"user:{user_id}", later))
            later += timedelta(seconds=steps[-1])
        assert steps == [0] * (free - 1) + [30, 60, 120, 240, 480]
        assert login_throttle.backoff_seconds(free + 30) == app.config["LOGIN_BACKOFF_MAX_SECONDS"]


def test_an_abuser_does_not_lock_out_the_others_at_the_same_address(app):
    signup(app.test_client())
    signup(app.test_client(), username="ben", email="ben@example.org")
    abuser = client_at(app, "10.0.0.1")
    for _ in range(15):
        assert login(abuser, password="wrong password!").status_code in (422, 429)
    assert login(abuser, password="wrong password!").status_code == 429
    assert login(client_at(app, "10.0.0.1"), login="ben").status_code == 303


def test_a_flood_of_account_names_from_one_address_hits_the_looser_address_cap(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ADDRESS_RATE_LIMIT", "5 per minute")
    signup(app.test_client())
    flood = client_at(app, "10.0.0.1")
    assert [login(flood, login=f"guess{n}").status_code for n in range(5)] == [422] * 5
    assert login(flood).status_code == 429
    assert login(client_at(app, "10.0.0.2")).status_code == 303


@pytest.mark.parametrize("proxies", [0, 1])
def test_the_client_address_comes_from_the_trusted_proxy_only(make_app, proxies):
    """With TRUSTED_PROXY_COUNT=1 the limits key on the address the proxy saw; with 0 (no proxy) a forged
    X-Forwarded-For changes nothing."""
    app = make_app(TRUSTED_PROXY_COUNT=proxies, LOGIN_ADDRESS_RATE_LIMIT="3 per minute")
    signup(app.test_client())

    def through_proxy(address: str):
        client = app.test_client()
        client.environ_base["HTTP_X_FORWARDED_FOR"] = address
        return client

    assert [login(through_proxy("203.0.113.1"), login=f"guess{n}").status_code for n in range(3)] == [422] * 3
    assert login(through_proxy("203.0.113.1")).status_code == 429
    assert login(through_proxy("198.51.100.7")).status_code == (303 if proxies else 429)


def test_public_profile_and_missing_member(make_member):
    ana = make_member("ana")
    assert "@ana" in ana.client.get("/u/ana").get_data(as_text=True)
    assert ana.client.get("/u/nobody-here").status_code == 404


def test_role_check_on_moderator_pages(make_member):
    member = make_member("plain", role="member")
    moderator = make_member("mod", role="moderator")
    assert member.client.get("/moderation/jobs").status_code == 403
    assert member.post("/moderation/jobs/reconcile").status_code == 403
    assert moderator.client.get("/moderation/jobs").status_code == 200


def test_session_of_deleted_user_is_simply_signed_out(app, make_member):
    ana = make_member("ana")
    with app.app_context():
        user = accounts.get_by_username("ana")
        db.session.delete(user)
        db.session.commit()
    assert ana.client.get("/dashboard").status_code == 303


@pytest.mark.parametrize("shared", ["username", "email"])
def test_ten_sign_ups_at_once_with_one_name_give_one_account_and_nine_form_errors(app, shared):
    """On PostgreSQL, ten threads race past the "is it taken" check: the unique key decides, and the losers
    get the same form error as a sequential duplicate, never a 500."""
    import threading

    clients = [app.test_client() for _ in range(10)]
    forms = []
    for number, client in enumerate(clients):
        forms.append({
            "username": "racer" if shared == "username" else f"racer{number}",
            "email": "racer@example.org" if shared == "email" else f"racer{number}@example.org",
            "password": "a long passphrase", "confirm": "a long passphrase", "timezone": "UTC",
            "csrf_token": csrf_token_from(client, "/signup"),
        })
    barrier = threading.Barrier(len(clients))
    responses = [None] * len(clients)

    def attempt(number: int) -> None:
        barrier.wait()
        responses[number] = clients[number].post("/signup", data=forms[number])

    threads = [threading.Thread(target=attempt, args=(number,)) for number in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(response.status_code for response in responses)
    assert codes == [303] + [422] * 9, codes
    message = "That username is taken." if shared == "username" else "An account with that email already exists."
    assert all(message in errors_in(response) for response in responses if response.status_code == 422), [errors_in(r) for r in responses]
    assert count_users(app) == 1


def test_the_country_list_holds_iso_countries_only(app, client):
    signup(client)
    page = client.get("/settings").get_data(as_text=True)
    offered = set(re.findall(r'<option[^>]* value="([A-Z]{2})"', page))
    assert {"BR", "FR", "ID", "PT"} <= offered and len(offered) == 249
    for name in ("Pseudo-Accents", "Pseudo-Bidi", "Unknown Region", "United Nations", "Eurozone"):
        assert name not in page
    token = csrf_token_from(client, "/settings")
    for code in ("ZZ", "EU", "UN", "XA"):
        response = client.post("/settings", data={"display_name": "Ana", "country": code, "timezone": "UTC", "locale": "en", "csrf_token": token})
        assert response.status_code == 422 and "Choose an option from the list." in errors_in(response), code
    with app.app_context():
        assert accounts.get_by_username("ana_lima").country == "BR"
        with pytest.raises(accounts.AccountError, match="Choose a country from the list."):
            accounts.update_profile(accounts.get_by_username("ana_lima").id, display_name="Ana", bio="", country="ZZ",
                                    timezone="UTC", locale=None, hide_from_boards=False, languages=app.config["LANGUAGES"])


@pytest.mark.parametrize("look_alike", ["demо_admin", "demo_admın", "DEMO_ADMІN", "dem0_admin", "derno_admin", "ｄｅｍｏ_admin"])
def test_a_username_that_looks_like_an_existing_one_is_refused(app, look_alike):
    """Cyrillic о, dotless ı, Cyrillic І, zero for o, "rn" for m, full-width letters: the UTS #39 skeleton
    matches demo_admin's, so the name is refused (by the check, or by the unique skeleton under a race)."""
    assert signup(app.test_client(), username="demo_admin", email="admin@example.org").status_code == 303
    response = signup(app.test_client(), username=look_alike, email="other@example.org")
    assert response.status_code == 422, look_alike
    assert errors_in(response) in {
        "That username looks too much like an existing member's. Choose another.", "That username is taken.",
        "Use letters, digits, dots, dashes and underscores only.",
    }
    assert count_users(app) == 1
    assert signup(app.test_client(), username="demo_admin2", email="third@example.org").status_code == 303


def test_the_look_alike_check_is_in_the_service_and_the_database(app):
    from sqlalchemy.exc import IntegrityError

    from sapien.accounts.models import User
    from sapien.database import utcnow

    with app.app_context():
        accounts.sign_up(accounts.SignUp(username="demo_admin", email="a@example.org", password="a long passphrase"), now=utcnow())
        with pytest.raises(accounts.AccountError, match="looks too much like"):
            accounts.sign_up(accounts.SignUp(username="demо_admin", email="b@example.org", password="a long passphrase"), now=utcnow())
        first = accounts.get_by_username("demo_admin")
        db.session.add(User(username="demо_admin", username_key="demо_admin", username_skeleton=first.username_skeleton,
                            email="c@example.org", password_hash="x", display_name="x", role="member", created_at=utcnow()))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_names_cannot_hold_bidi_or_control_characters(app, client):
    from sapien.database import utcnow

    response = signup(app.test_client(), username="ana\u202elima")
    assert response.status_code == 422 and "Use letters, digits, dots, dashes and underscores only." in errors_in(response)
    with app.app_context(), pytest.raises(accounts.AccountError, match="invisible control characters"):
        accounts.sign_up(accounts.SignUp(username="ana", email="a@example.org", password="a long passphrase",
                                         display_name="Ana\u202egnp.exe"), now=utcnow())
    signup(client)
    token = csrf_token_from(client, "/settings")
    for name in ("Ana\u202egnp.exe", "Ana\u2066x\u2069", "Ana\u200f", "Ana\x1b[31m"):
        response = client.post("/settings", data={"display_name": name, "timezone": "UTC", "locale": "en", "csrf_token": token})
        assert response.status_code == 422, repr(name)
        assert "Names cannot contain invisible control characters" in errors_in(response)
    with app.app_context():
        assert accounts.get_by_username("ana_lima").display_name == "ana_lima"
