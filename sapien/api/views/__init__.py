"""The API area's web layer: `/api/v1` (JSON, flask-smorest) and the organization dashboard (HTML)."""

from __future__ import annotations

import http

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from sapien.api.schemas import CocoSchema, ProblemSchema, ResultPageSchema
from sapien.extensions import csrf, limiter
from sapien.problems import PROBLEM_JSON


class ProblemApi(Api):
    """flask-smorest with RFC 9457 errors: the error responses in the document are problem+json, and the
    errors themselves are answered by the web shell and the blueprint (never by flask-smorest's handler,
    which would turn every page of the site into JSON)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        return None

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def register_api(app: Flask) -> None:
    from sapien.api.views.dashboard import bp as dashboard_bp
    from sapien.api.views.docs import bp as docs_bp
    from sapien.api.views.v1 import blp

    app.config.setdefault("API_TITLE", "Sapien API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = ProblemApi(
        app,
        spec_kwargs={
            "info": {"description": "Launch labeling campaigns and receive verified, structured data. Authenticate with `Authorization: Bearer sk_…`."},
            "security": [{"bearerAuth": []}],
        },
    )
    # The results' JSON answer is one of two documents (named here: the route's doc lists them by reference).
    api.spec.components.schema("ResultPage", schema=ResultPageSchema)
    api.spec.components.schema("Coco", schema=CocoSchema)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "description": "An organization's API key (sk_…)."})
    csrf.exempt(blp)
    limiter.exempt(blp)  # limited per key instead (`keys.count_request`)
    api.register_blueprint(blp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(docs_bp)

    @app.context_processor
    def _organizations_nav():
        # Called by the nav only for a signed-in member on a full page: one indexed lookup.
        return {"nav_organizations": lambda: _member_of_an_organization()}


def _member_of_an_organization() -> bool:
    from flask_login import current_user

    from sapien.api.orgs import is_org_member

    return is_org_member(current_user.id)
