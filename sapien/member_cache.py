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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from flask import Flask, Response, current_app, make_response, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import event
from sqlalchemy.orm import Session

from sapien.extensions import db
from sapien.i18n import request_i18n, zone_or_utc
from sapien.queue import redis_connection
from sapien.theme import current_theme
from sapien.web import wants_fragment

GENERATION_SECONDS = 86_400  # longer than anything cached lives; an expired counter restarts at 0
CSRF_PLACEHOLDER = "\x00csrf\x00"  # the session's own CSRF token goes back into a cached page per request
PENDING = "touched_members"
PENDING_USER_ROWS = "touched_user_rows"
EVENT_MEMBER_FIELDS = ("user_id", "author_id", "reviewer_id")


def generation_key(user_id: int) -> str:
    return f"sapien:member-generation:{user_id}"


def user_row_key(user_id: int) -> str:
    return f"sapien:member-user-row:{user_id}"


def bump_generations(user_ids: Iterable[int], user_rows: Iterable[int] = ()) -> None:
    """Mark everything cached for these members stale (only once the change has committed), and the
    cached user rows of `user_rows`."""
    rows = sorted(set(user_rows))
    keys = [generation_key(user_id) for user_id in sorted(set(user_ids) | set(rows))] + [user_row_key(user_id) for user_id in rows]
    if not keys:
        return
    pipeline = redis_connection().pipeline(transaction=False)
    for key in keys:
        pipeline.incr(key)
        pipeline.expire(key, GENERATION_SECONDS)
    pipeline.execute()


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
    if ids:
        touch_member(*ids)


def read(user_id: int, name: str, *stamp_keys: str, generation: bool = True) -> tuple[bytes, bytes | None]:
    """(the member's current stamp, the value cached as `name` if it was made under that stamp). The stamp
    is the member's generation and the `stamp_keys` (only the keys, with `generation=False`)."""
    keys = [generation_key(user_id), *stamp_keys] if generation else list(stamp_keys)
    *versions, value = redis_connection().mget([*keys, f"sapien:member:{user_id}:{name}"])
    stamp = b".".join(version or b"0" for version in versions) + b"|"
    if value is not None and value.startswith(stamp):
        return stamp, value[len(stamp):]
    return stamp, None


def write(user_id: int, name: str, stamp: bytes, value: bytes, seconds: int) -> None:
    """Keep `value` under the stamp read *before* the data behind it was read."""
    redis_connection().set(f"sapien:member:{user_id}:{name}", stamp + value, ex=seconds)


def member_page(name: str, render: Callable[[], Response], *, now: datetime, stamp_keys: Iterable[str] = ()) -> Response:
    """Serve the signed-in member's page `name` from the cache, or render it with `render` and keep it.

    `stamp_keys` are Redis keys of global versions the page depends on. Requests with a query string or
    pending flash messages are rendered fresh: those pages are one-offs.
    """
    seconds = current_app.config["PAGE_CACHE_SECONDS"]
    if not seconds or request.args or session.get("_flashes"):
        return render()
    user = current_user._get_current_object()
    variant = ":".join((
        name, str(request_i18n()[1]), user.role, current_theme(), now.astimezone(zone_or_utc(user.timezone)).date().isoformat(), now.date().isoformat(),
        "fragment" if wants_fragment() else "page",
    ))
    stamp, cached = read(user.id, f"page:{variant}", *stamp_keys)
    if cached is not None:
        response = make_response(cached.decode().replace(CSRF_PLACEHOLDER, generate_csrf()))
        response.headers["Vary"] = "HX-Request"
        return response
    response = render()
    if response.status_code == 200:
        body = response.get_data(as_text=True).replace(generate_csrf(), CSRF_PLACEHOLDER)
        write(user.id, f"page:{variant}", stamp, body.encode(), seconds)
    return response


def register_member_cache(app: Flask) -> None:
    @app.after_request
    def _member_posted(response: Response) -> Response:
        # Whatever a member POSTs (a claim, a setting, marking notifications read) may change their pages.
        if request.method == "POST" and current_user.is_authenticated:
            bump_generations([current_user.id])
        return response
