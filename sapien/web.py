"""The web shell: page-or-fragment rendering, htmx-aware redirects and flashes, errors, headers."""

from __future__ import annotations

from contextlib import suppress
from functools import wraps
from http import HTTPStatus
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    make_response,
    redirect,
    render_template,
    request,
    session,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from sapien.extensions import db, htmx, login_manager
from sapien.problems import is_api_path, problem

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


MAX_DATABASE_ID = 2**31 - 1  # ids are 32-bit integer columns


def database_id(value: str) -> int:
    """`type=` for ids read from forms and query strings: a number no row can have is no id at all, so
    `request.form.get("lease_id", type=database_id)` gives the default instead of a database error."""
    number = int(value)
    if not 1 <= number <= MAX_DATABASE_ID:
        raise ValueError(f"{value!r} is not an id")
    return number


class DatabaseIdConverter(IntegerConverter):
    """The `<int:…>` URL converter, capped at the largest id: a longer number is a 404, not a database error."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_DATABASE_ID, signed: bool = False):  # noqa: A002 - werkzeug's names
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


SIGNED_CSRF_TOKENS: dict[tuple[str, str], str] = {}  # (secret key, a session's token) → its signed form
SIGNED_CSRF_TOKENS_KEPT = 10_000


def csrf_token() -> str:
    """Flask-WTF's `generate_csrf`, signing each session's token once per process rather than once per
    request (a cached page needs nothing else computed).

    A signed token carries a timestamp that only a CSRF time limit reads. Sapien sets none
    (`WTF_CSRF_TIME_LIMIT` is None: a token lives as long as its session), so an earlier signature of
    the session's token validates exactly like a fresh one; with a time limit this signs anew.
    """
    raw = session.get("csrf_token")
    if raw is None or "csrf_token" in g or current_app.config["WTF_CSRF_TIME_LIMIT"] is not None:
        return generate_csrf()
    key = (current_app.secret_key, raw)
    signed = SIGNED_CSRF_TOKENS.get(key)
    if signed is None:
        if len(SIGNED_CSRF_TOKENS) >= SIGNED_CSRF_TOKENS_KEPT:
            SIGNED_CSRF_TOKENS.clear()
        signed = SIGNED_CSRF_TOKENS[key] = generate_csrf()
    g.csrf_token = signed  # where generate_csrf looks first, so forms in this request use the same
    return signed


def wants_fragment() -> bool:
    """An htmx request that swaps part of a page (a boosted navigation wants the whole page)."""
    return bool(htmx) and not htmx.boosted


def render_page_or_fragment(page: str, fragment: str, status: int = 200, **context) -> Response:
    """Render the full page for a direct load, or only the fragment for an htmx request.

    Flash messages ride along with a fragment as an out-of-band swap, so they show without a reload.
    """
    if wants_fragment():
        body = render_template(fragment, **context) + render_template("fragments/flashes_oob.html")
    else:
        body = render_template(page, **context)
    response = make_response(body, status)
    response.headers["Vary"] = "HX-Request"
    return response


def render_poll(page: str, fragment: str, **context) -> Response:
    """Like `render_page_or_fragment`, for fragments htmx polls (`hx-trigger="every …"`): the fragment
    carries no flash messages, so a poll neither consumes pending flashes nor wipes toasts on screen."""
    if not wants_fragment():
        return render_page_or_fragment(page, fragment, **context)
    response = make_response(render_template(fragment, **context))
    response.headers["Vary"] = "HX-Request"
    return response


def safe_next_url(default: str) -> str:
    """Follow `?next=` only to a path on this site, never to another host."""
    target = request.values.get("next", "")
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc and not parts.scheme:
        return target
    return default


def long_lived_cookie(response: Response, name: str, value: str) -> None:
    """A preference cookie (language, theme) kept a year, with the session cookie's Secure flag."""
    response.set_cookie(name, value, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"])


def redirect_to(url: str, status: int = 303) -> Response:
    """Redirect after a successful POST: a plain 303 for forms, `HX-Redirect` for htmx."""
    if htmx:
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=status)


def flash_message(message: str, category: str = "success") -> None:
    flash(str(message), category)


def role_required(role: str):
    """Allow the route only to signed-in users holding `role` or a higher one."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


ERROR_TITLES = {
    400: _l("Bad request"),
    403: _l("You do not have access to this page"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    413: _l("That upload is too large"),
    422: _l("Some of what you sent could not be used"),
    429: _l("Too many requests"),
    500: _l("Something went wrong on our side"),
    503: _l("Service unavailable"),
}
ERROR_HINTS = {
    400: _l("The request was malformed. Reload the page and try again."),
    403: _l("Your account does not have the role this page needs."),
    404: _l("The page you asked for does not exist or has moved."),
    405: _l("This address does not accept that kind of request."),
    413: _l("Choose a smaller file and try again."),
    422: _l("Check the highlighted fields and try again."),
    429: _l("You are going a little fast. Wait a moment, then try again."),
    500: _l("The error has been logged. Please try again in a moment."),
    503: _l("A service the site depends on is down. Please try again shortly."),
}


def _forget_the_transaction() -> None:
    """Before an error page: roll back whatever the failed request left open, so the page's own queries (the
    signed-in member, the bell) run in a fresh transaction instead of failing on a broken one."""
    with suppress(Exception):
        db.session.rollback()


def render_error(status: int, message: str | None = None) -> Response:
    if is_api_path(request.path):
        return problem(status, str(message) if message else None)  # RFC 9457 problem+json (the API area)
    if request.path.startswith("/api/") or request.path == "/healthz":
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        return make_response({"error": phrase, "message": message or phrase}, status)
    try:
        response = render_page_or_fragment(
            "errors/error.html",
            "errors/fragments/error.html",
            status=status,
            code=status,
            title=ERROR_TITLES.get(status, _l("Error")),
            hint=message or ERROR_HINTS.get(status, ""),
        )
    except Exception:  # noqa: BLE001 - the error page itself failed: answer with the bare minimum
        current_app.logger.exception("The error page failed to render")
        return make_response(f"<!doctype html><title>Error {status}</title><h1>Error {status}</h1>", status)
    if wants_fragment():
        # An error replaces the main column, not whatever small target the request aimed at.
        response.headers["HX-Retarget"] = "#main"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def json_form_fields() -> list[list[str]] | None:
    """A JSON body sent to a form route as lists of values per field, or None when it is not an object
    of text fields (a number, a nested object): a form field is text, or a list of texts."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    fields = []
    for value in body.values():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in values):
            return None
        fields.append(values)
    return fields


def register_web_shell(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseIdConverter  # before any blueprint's rules are built

    @app.before_request
    def _refuse_unusable_input():
        # PostgreSQL text cannot hold NUL, and no field or path segment means one: refuse the request before
        # anything runs. Form routes read a JSON body as their fields (Flask-WTF): those must be text too.
        fields = [*request.args.listvalues()]
        if request.method != "GET" and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields += request.form.listvalues()
        elif request.method != "GET" and request.is_json and not request.path.startswith("/api/"):
            body = json_form_fields()
            if body is None:
                return render_error(400, _l("Send the form's fields as text."))
            fields += body
        if "\x00" in request.path or any("\x00" in value for values in fields for value in values):
            return render_error(400, _l("Text cannot contain the NUL character. Remove it and send again."))
        return None

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):
        return render_error(400, _l("Your form expired or was sent without its security token. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return render_error(error.code or 500, getattr(error, "user_message", None))

    @app.errorhandler(DBAPIError)
    def _database_error(error: DBAPIError):
        # The request's transaction is gone either way; roll the session back so the error page (and the
        # next request) can read again, on a new connection once the pool dropped the dead one.
        _forget_the_transaction()
        if not error.connection_invalidated:
            return _unexpected_error(error)
        app.logger.warning("Lost the database connection on %s %s: %s", request.method, request.path, error.orig)
        return render_error(503, _l("The site lost its connection to the database. Please try again."))
    @app.errorhandler(RedisError)
    def _redis_unavailable(error: RedisError):
        # What still needs Redis while it is down (most requests only use it as a cache and carry on without
        # it) answers a clear "try again", never a 500. Nothing half-done is kept: the open transaction goes.
        app.logger.warning("Redis unavailable on %s %s: %s", request.method, request.path, error)
        _forget_the_transaction()
        response = render_error(503, _l("The site is busy recovering, try again in a moment."))
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def _unexpected_error(error: Exception):
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        _forget_the_transaction()
        return render_error(500)

    security_headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), geolocation=(), microphone=()"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if app.config["SAPIEN_ENV"] == "production":
        security_headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    security_names = {name.lower() for name, _value in security_headers}

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        if security_names.isdisjoint(name.lower() for name, _value in headers):
            headers.extend(security_headers)  # the usual case, in one pass over the response's few headers
        else:  # a view set one of them itself: keep its own
            for name, value in security_headers:
                headers.setdefault(name, value)
        return response

    @app.context_processor
    def _shell_context():
        return {"pending_flashes": lambda: get_flashed_messages(with_categories=True)}


def show_domain_error(form, error) -> None:
    """Put a domain error's message on its form field, or on the form as a whole."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error.message)]
    else:
        form.form_errors.append(str(error.message))


def form_status(form) -> int:
    """200 for a fresh form, 422 for a submitted one that is being shown again with errors."""
    return 422 if request.method == "POST" else 200
