"""Every cookie the site sets under the production config, read from the real Set-Cookie headers."""

from __future__ import annotations

from http.cookies import SimpleCookie

from sapien.accounts import service as accounts
from sapien.database import utcnow
from sapien.theme import THEME_COOKIE
from tests.conftest import CSRF_META

PRODUCTION = {"SAPIEN_ENV": "production", "TESTING": False, "SECRET_KEY": "s" * 48, "CHAIN_SIGNER_KEY": "0x" + "11" * 32}


def set_cookies(response) -> dict[str, dict]:
    """{name: {attribute: value}} for every Set-Cookie header of a response, flags as True."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        parts = [part.strip() for part in header.split(";")[1:]]
        found[name] = {key.lower(): (value if sep else True) for key, sep, value in (part.partition("=") for part in parts)}
        assert SimpleCookie(header)  # a well-formed header
    return found


def test_production_cookies_are_secure_httponly_lax_and_host_only(make_app):
    app = make_app(**PRODUCTION)
    with app.app_context():
        accounts.sign_up(accounts.SignUp(username="ana", email="ana@example.org", password="a long passphrase"), now=utcnow())
    client = app.test_client()
    # Over HTTPS, Flask-WTF also wants a same-origin Referer on a POST.
    https = {"base_url": "https://sapien.example", "headers": {"Referer": "https://sapien.example/login"}}
    first = client.get("/login", **https)
    token = CSRF_META.search(first.get_data(as_text=True)).group(1)
    signed_in = client.post("/login", data={"login": "ana", "password": "a long passphrase", "remember": "y", "csrf_token": token}, **https)
    assert signed_in.status_code == 303
    language = client.post("/language", data={"locale": "fr", "csrf_token": token}, **https)
    theme = client.post("/theme", data={"theme": "dark", "csrf_token": token}, **https)
    assert theme.status_code == 303
    cookies = {**set_cookies(first), **set_cookies(signed_in), **set_cookies(language), **set_cookies(theme)}
    from sapien.moderation.signals import DEVICE_COOKIE

    assert set(cookies) == {"__Host-session", "__Host-remember_token", "sapien_lang", THEME_COOKIE, DEVICE_COOKIE}, cookies
    for name, attributes in cookies.items():
        assert attributes.get("secure") is True, name
        assert attributes.get("httponly") is True, name
        assert attributes.get("samesite") == "Lax", name
        assert "domain" not in attributes, name
    for name in ("__Host-session", "__Host-remember_token"):
        assert cookies[name]["path"] == "/"  # the __Host- prefix needs it, with Secure and no Domain
    assert "expires" in cookies["__Host-remember_token"]
    # The signed-in session works over HTTPS with those names.
    assert client.get("/dashboard", **https).status_code == 200
