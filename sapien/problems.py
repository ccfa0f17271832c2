"""RFC 9457 problem details (the API area's error format, shared so the web shell answers with it too):
every error under /api/v1 answers `application/problem+json`.

`type` is a relative URI naming the kind of problem (`/api/v1/problems/not-found`); `title` is the
HTTP phrase, `detail` the reason in the caller's words, `errors` the field messages of a bad body and
`problems` the lines an items file had wrong.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Response

PROBLEM_JSON = "application/problem+json"
PREFIX = "/api/v1"


def is_api_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def problem(status: int, detail: str | None = None, *, slug: str | None = None, headers: dict | None = None, **extra) -> Response:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = {
        "type": f"{PREFIX}/problems/{slug or phrase.lower().replace(' ', '-').replace('/', '-')}",
        "title": phrase,
        "status": status,
        "detail": str(detail) if detail else phrase,
        **{key: value for key, value in extra.items() if value is not None},
    }
    response = Response(json.dumps(body, ensure_ascii=False, default=str), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
