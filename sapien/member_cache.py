"""What a member sees, cached in Redis: their signed-in user row and their most-loaded rendered pages.

Every cached value is stamped with the member's *generation*, a counter bumped after the commit of
anything that changes what they see: a change to their user row, every event about them in the signal
catalogue, every POST they make. A value made from older data carries an older stamp and is never used,
so a reader racing a writer can at worst cache something nobody will read. Pages also carry global
versions they depend on (the quest catalogue) and a short lifetime, which bounds what no event announces
(another member's progress on a shared guild quest, a quest window opening during the day). Redis is
only a cache here (DESIGN rule 2): a flush costs one render.

The signed-in user row has a counter of its own, bumped only when the row changes: it does not depend on
the member's other data, so a POST (which bumps the generation) does not cost the next request a reload.

Reading costs no round trip of its own: the keys a request will read are known from the request alone
(the member in the session cookie, the endpoint's `cached_page`), so they come back in the one pipeline
every request sends (sapien/request_pipeline.py) and `read` finds them in `g`. A served page is the
cached bytes with the session's CSRF token put back; nothing in it is computed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import suppress
from functools import wraps

from flask import Flask, Response, current_app, g, has_request_context, make_response, request, session
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from sapien.database import utcnow
from sapien.extensions import db
from sapien.i18n import request_language, zone_or_utc
from sapien.queue import redis_connection
from sapien.redis_keys import redis_key
from sapien.theme import current_theme
from sapien.web import csrf_token, wants_fragment

log = logging.getLogger(__name__)

GENERATION_SECONDS = 86_400  # longer than anything cached lives; an expired counter restarts at 0
CSRF_PLACEHOLDER = b"\x00csrf\x00"  # the session's own CSRF token goes back into a cached page per request
PENDING = "touched_members"
PENDING_USER_ROWS = "touched_user_rows"
EVENT_MEMBER_FIELDS = ("user_id", "author_id", "reviewer_id")


def generation_key(user_id: int) -> str:
    return redis_key(f"member-generation:{user_id}")


def user_row_key(user_id: int) -> str:
    return redis_key(f"member-user-row:{user_id}")


def value_key(user_id: int, name: str) -> str:
    return redis_key(f"member:{user_id}:{name}")


def bump_generations(user_ids: Iterable[int], user_rows: Iterable[int] = ()) -> None:
    """Mark everything cached for these members stale (only once the change has committed), and the
    cached user rows of `user_rows`."""
    rows = sorted(set(user_rows))
    keys = [generation_key(user_id) for user_id in sorted(set(user_ids) | set(rows))] + [user_row_key(user_id) for user_id in rows]
    if not keys:
        return
    _forget_prefetched()
    pipeline = redis_connection().pipeline(transaction=False)
    for key in keys:
        pipeline.incr(key)
        pipeline.expire(key, GENERATION_SECONDS)
    try:
        pipeline.execute()
    except RedisError as error:
        # Redis is down: nothing can be served from it either, and a Redis that comes back empty has no
        # stale pages. (One that was only unreachable may serve a page for up to PAGE_CACHE_SECONDS.)
        log.warning("member cache not marked stale for %s, Redis is unavailable: %s", keys, error)


def touch_member(*user_ids: int, user_row: bool = False) -> None:
    """The open transaction changes what these members see (`user_row`: their user row itself): bump
    their generation when it commits.

    Bumping before the commit would let a reader cache the old rows under the new stamp.
    """
    current = db.session()
    if not current.in_transaction():
        bump_generations(user_ids, user_ids if user_row else ())
        return
    current.info.setdefault(PENDING, set()).update(user_ids)
    if user_row:
        current.info.setdefault(PENDING_USER_ROWS, set()).update(user_ids)


@event.listens_for(Session, "after_commit")
def _bump_after_commit(committed: Session) -> None:
    pending = committed.info.pop(PENDING, None)
    user_rows = committed.info.pop(PENDING_USER_ROWS, None)
    if pending or user_rows:
        bump_generations(pending or (), user_rows or ())


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(rolled_back: Session) -> None:
    rolled_back.info.pop(PENDING, None)
    rolled_back.info.pop(PENDING_USER_ROWS, None)


def on_member_event(_sender=None, **payload) -> None:
    """Listener for every signal of the catalogue: the member an event is about sees something new.

    `item-verified` names no member: what it changes for contributors reaches them as ledger events, and
    a batch aggregation sends tens of thousands of them.
    """
    ids = [payload[name] for name in EVENT_MEMBER_FIELDS if isinstance(payload.get(name), int)]
    ids += [one for one in payload.get("user_ids") or () if isinstance(one, int)]  # an arena match names all its players
    if ids:
        touch_member(*ids)


def stamped_keys(user_id: int, name: str, stamp_keys: Iterable[str] = (), generation: bool = True) -> list[str]:
    """The keys `read` fetches for `name`: its stamp's versions, then the value."""
    return [*([generation_key(user_id)] if generation else []), *stamp_keys, value_key(user_id, name)]


def read(user_id: int, name: str, *stamp_keys: str, generation: bool = True, variant: str = "") -> tuple[bytes, bytes | None]:
    """(the member's current stamp, the value cached as `name` if it was made under that stamp). The stamp
    is the member's generation, the `stamp_keys` (only the keys, with `generation=False`) and `variant`
    (what else the value was made for, such as the language). Values fetched before the view ran
    (`keys_to_prefetch`) are used without asking Redis again. With Redis down nothing is cached: the
    stamp is empty and `write` keeps nothing under it."""
    keys = stamped_keys(user_id, name, stamp_keys, generation)
    values = _prefetched(keys)
    if values is None:
        try:
            values = redis_connection().mget(keys)
        except RedisError:
            return b"", None
    *versions, value = values
    stamp = b".".join(version or b"0" for version in versions) + b"|" + (variant.encode() + b"|" if variant else b"")
    if value is not None and value.startswith(stamp):
        return stamp, value[len(stamp):]
    return stamp, None


def write(user_id: int, name: str, stamp: bytes, value: bytes, seconds: int) -> None:
    """Keep `value` under the stamp read *before* the data behind it was read."""
    key = value_key(user_id, name)
    if has_request_context():
        g.get(PREFETCHED, {}).pop(key, None)
    if not stamp:  # read while Redis was down
        return
    with suppress(RedisError):  # a cache that cannot keep a value costs the next request one render, nothing more
        redis_connection().set(key, stamp + value, ex=seconds)


# Prefetching: the keys a request will read are known before its view runs, so they come back in the one
# Redis round trip the request makes (sapien/request_pipeline.py) and wait in `g` for `read`.

USER_ROW = "session-user"  # the signed-in user row, read and written by accounts' session loader
PREFETCHED = "_member_cache_prefetched"


def session_user_id() -> int | None:
    """The member id in Flask-Login's session cookie (`"<user id>:<session version>"`), unchecked: the
    loader still checks the session version and the ban before anyone is signed in."""
    user_id = str(session.get("_user_id", "")).partition(":")[0]
    return int(user_id) if user_id.isdigit() else None


_FETCHED_ALONG: list[Callable[[], str]] = []


def fetch_along(make_key: Callable[[], str]) -> Callable[[], str]:
    """Have every signed-in request fetch the key `make_key()` names in its one round trip, for
    `prefetched_value`: a value most signed-in requests read, such as economy's settings version."""
    _FETCHED_ALONG.append(make_key)
    return make_key


def keys_to_prefetch() -> list[str]:
    """Every member-cache key this request will read, known from the request alone: the cached user row
    of the member in the session cookie, the keys fetched along (`fetch_along`) and, on a `cached_page`
    view that may be served from the cache, the page with its stamps."""
    user_id = session_user_id()
    if user_id is None:
        return []
    keys = stamped_keys(user_id, USER_ROW, [user_row_key(user_id)], generation=False)
    keys += [make_key() for make_key in _FETCHED_ALONG]
    page = getattr(current_app.view_functions.get(request.endpoint or ""), "cached_page", None)
    if page is not None and _servable():
        name, stamp_key_makers = page
        keys += stamped_keys(user_id, _page_key_name(name), [make() for make in stamp_key_makers])
    return keys


def keep_prefetched(keys: list[str], values: list[bytes | None]) -> None:
    g.setdefault(PREFETCHED, {}).update(zip(keys, values, strict=True))


def prefetched_value(key: str) -> bytes | None:
    """The value of a key fetched before the view ran (`fetch_along`); None when it was not fetched, when
    Redis had none, or after a write in this request made what was fetched stale."""
    values = _prefetched([key])
    return values[0] if values else None


def _prefetched(keys: list[str]) -> list[bytes | None] | None:
    fetched = g.get(PREFETCHED) if has_request_context() else None
    if not fetched or not all(key in fetched for key in keys):
        return None
    return [fetched[key] for key in keys]


def _forget_prefetched() -> None:
    # After a write the values fetched before it are stale: later reads in this request go to Redis.
    if has_request_context():
        g.pop(PREFETCHED, None)


def _servable() -> bool:
    """May this request get a cached page? Requests with a query string or pending flash messages are
    rendered fresh: those pages are one-offs."""
    return bool(current_app.config["PAGE_CACHE_SECONDS"]) and not request.args and not session.get("_flashes")


def _page_key_name(name: str) -> str:
    return f"page:{name}:{'fragment' if wants_fragment() else 'page'}"


def cached_page(name: str, *stamp_key_makers: Callable[[], str]) -> Callable:
    """Decorate a signed-in member's GET view: serve its page `name` from the cache, or call the view
    (with `now=`) and keep what it renders.

    `stamp_key_makers` give the Redis keys of global versions the page depends on (functions, because a
    key carries the deployment's prefix, known only inside the app). The page is kept per member and
    per page-or-fragment; the language, role, colour theme and dates it was made for are part of its stamp, so a page
    made for another of them is rendered afresh. Only the session's CSRF token differs between two
    requests for the same page: it goes back in per request.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def serve(*args, **kwargs) -> Response:
            now = utcnow()
            if not _servable():
                return make_response(view(*args, now=now, **kwargs))
            user = current_user._get_current_object()
            language, zone = request_language()
            variant = ":".join((language, user.role, current_theme(), now.astimezone(zone_or_utc(zone)).date().isoformat(),
                                now.date().isoformat()))
            key_name = _page_key_name(name)
            stamp, cached = read(user.id, key_name, *(make() for make in stamp_key_makers), variant=variant)
            if cached is not None:
                response = current_app.response_class(cached.replace(CSRF_PLACEHOLDER, csrf_token().encode()))
                response.headers["Vary"] = "HX-Request"
                return response
            response = make_response(view(*args, now=now, **kwargs))
            if response.status_code == 200:
                body = response.get_data().replace(csrf_token().encode(), CSRF_PLACEHOLDER)
                write(user.id, key_name, stamp, body, current_app.config["PAGE_CACHE_SECONDS"])
            return response

        serve.cached_page = (name, stamp_key_makers)  # read by keys_to_prefetch through the endpoint's view
        return serve

    return decorator


def register_member_cache(app: Flask) -> None:
    @app.after_request
    def _member_posted(response: Response) -> Response:
        # Whatever a member POSTs (a claim, a setting, marking notifications read) may change their pages.
        if request.method == "POST" and current_user.is_authenticated:
            bump_generations([current_user.id])
        return response
