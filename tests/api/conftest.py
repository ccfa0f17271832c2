"""Fixtures for the API tests: an organization with keys, and a client that checks every answer against
the OpenAPI document the app serves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import count

import pytest

from tests.conftest import decide_items

_names = count(1)


@dataclass
class Org:
    id: int
    slug: str
    write_key: str
    read_key: str
    write_key_id: int


def make_org(name: str | None = None) -> Org:
    from sapien.api import keys, orgs
    from sapien.database import utcnow

    number = next(_names)
    organization = orgs.create_organization(name or f"Acme {number}", f"acme-{number}", now=utcnow())
    write, write_token = keys.create_key(organization.id, name="ci", scope="write", actor_id=None, now=utcnow())
    _read, read_token = keys.create_key(organization.id, name="dashboards", scope="read", actor_id=None, now=utcnow())
    return Org(organization.id, organization.slug, write_token, read_token, write.id)


@pytest.fixture
def ctx(app):
    with app.test_request_context():
        yield app


@pytest.fixture
def org(ctx) -> Org:
    return make_org()


_spec_cache: dict = {}


def openapi_spec(client):
    from openapi_core import Config, OpenAPI

    if "spec" not in _spec_cache:
        text = lambda data: data.decode() if isinstance(data, bytes) else data  # noqa: E731
        config = Config(extra_media_type_deserializers={
            "application/problem+json": json.loads, "application/x-ndjson": text, "text/csv": text,
        })
        _spec_cache["spec"] = OpenAPI.from_dict(client.get("/api/v1/openapi.json").get_json(), config=config)
    return _spec_cache["spec"]


class ApiClient:
    """The Flask test client with a key; every answer is validated against the OpenAPI document
    (status, content type, body schema), so a route can never drift from what it documents."""

    def __init__(self, client, key: str | None):
        self.client = client
        self.key = key
        self.spec = openapi_spec(client)

    def call(self, method: str, path: str, *, key: str | None = "default", headers: dict | None = None, validate: bool = True, **kwargs):
        from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse

        headers = dict(headers or {})
        token = self.key if key == "default" else key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        if validate:
            class SentRequest(WerkzeugOpenAPIRequest):
                body = None  # only the answer is validated here; the request's stream was read by the app

            self.spec.validate_response(SentRequest(response.request), WerkzeugOpenAPIResponse(response))
        return response

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return self.call("POST", path, **kwargs)


@pytest.fixture
def api(app, org) -> ApiClient:
    return ApiClient(app.test_client(), org.write_key)


CAMPAIGN = {
    "name": "Support tickets",
    "task_type": "text_classification",
    "labels": ["pos", "neg"],
    "guidelines": "Is the customer happy?",
    "redundancy": 2,
    "budget_points": 1000,
    "gold_items": [
        {"external_id": "g1", "text": "I love it, thank you!", "gold": "pos", "explanation": "Thanks are positive."},
        {"external_id": "g2", "text": "Broken on arrival.", "gold": "neg"},
    ],
}


def label_everything(pack_id: int, members: list[int], answer_for) -> None:
    """Members lease and answer every item they are offered (gold items with their gold answer) until none is left."""
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import leases, submissions
    from sapien.labeling.errors import NoWorkLeft
    from sapien.labeling.models import Item

    for user_id in members:
        while True:
            try:
                lease = leases.lease_next_item(user_id, pack_id, utcnow())
            except NoWorkLeft:
                break
            item = db.session.get(Item, lease.item_id)
            answer = item.gold_answer if item.is_gold else answer_for(item)
            submissions.submit_answer(user_id, lease.id, answer, now=utcnow())
            decide_items()  # the decision job, as a worker keeping up runs it
