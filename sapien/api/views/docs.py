"""`/api/v1/docs`: Swagger UI over the generated document, served from our own origin (the files come
from the flask-swagger-ui package; the page loads them and `static/js/api-docs.js`, no inline script)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, abort, make_response, render_template, send_from_directory

bp = Blueprint("api_docs", __name__)
DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
# Swagger UI sets style attributes as it draws: styles may be inline on this page alone.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@bp.get("/api/v1/docs")
def docs():
    response = make_response(render_template("api/docs.html"))
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


@bp.get("/api/v1/docs/assets/<name>")
def asset(name: str):
    if name not in ASSETS:
        abort(404)
    return send_from_directory(DIST, name, max_age=86400)
