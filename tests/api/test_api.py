"""The /api/v1 contract: keys and scopes, organization isolation, problem+json errors, idempotent POSTs,
uploads, progress, quality, results and payments. Every answer is validated against the OpenAPI document."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from tests.api.conftest import CAMPAIGN, ApiClient, label_everything, make_org

PROBLEM = "application/problem+json"


def create(api: ApiClient, **changes) -> dict:
    response = api.post("/api/v1/campaigns", {**CAMPAIGN, **changes})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def upload(api: ApiClient, campaign_id: int, rows: list, **kwargs):
    body = "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    return api.post(f"/api/v1/campaigns/{campaign_id}/items", data=body, content_type="application/x-ndjson", **kwargs)


def test_the_document_is_openapi_3_1_with_interactive_docs(api):
    from openapi_spec_validator import validate

    document = api.client.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert "/api/v1/campaigns/{campaign_id}/results" in document["paths"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    docs = api.client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


def test_keys_scopes_and_revocation(ctx, api, org):
    from sapien.api import keys
    from sapien.database import utcnow

    missing = api.get("/api/v1/me", key=None)
    assert missing.status_code == 401 and missing.content_type == PROBLEM
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/api/v1/me", key="sk_nothing_real").status_code == 401
    me = api.get("/api/v1/me").get_json()
    assert me == {"organization_id": org.id, "organization": me["organization"], "key_id": org.write_key_id, "scope": "write"}
    # A read key reads but may not write.
    assert api.get("/api/v1/campaigns", key=org.read_key).status_code == 200
    refused = api.post("/api/v1/campaigns", CAMPAIGN, key=org.read_key)
    assert refused.status_code == 403 and refused.get_json()["type"] == "/api/v1/problems/forbidden"
    # Rotation: the old token stops working, the new one works, the last-used time is kept.
    new_key, token = keys.rotate_key(org.id, org.write_key_id, actor_id=None, now=utcnow())
    assert api.get("/api/v1/me").status_code == 401
    assert api.get("/api/v1/me", key=token).get_json()["key_id"] == new_key.id
    keys.revoke_key(org.id, new_key.id, now=utcnow())
    revoked = api.get("/api/v1/me", key=token)
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["detail"]
    stored = keys.organization_keys(org.id)
    assert all(len(k.secret_hash) == 64 and token not in k.secret_hash for k in stored)
    assert next(k for k in stored if k.id == org.write_key_id).last_used_at is not None


def test_problems_for_unknown_routes_methods_and_bad_bodies(api):
    unknown = api.get("/api/v1/nothing-here", validate=False)
    assert unknown.status_code == 404 and unknown.content_type == PROBLEM
    assert unknown.get_json()["status"] == 404
    wrong_method = api.call("DELETE", "/api/v1/campaigns", validate=False)
    assert wrong_method.status_code == 405 and wrong_method.content_type == PROBLEM
    invalid = api.post("/api/v1/campaigns", {"name": "x", "task_type": "juggling"})
    assert invalid.status_code == 422 and invalid.content_type == PROBLEM
    assert set(invalid.get_json()["errors"]) >= {"name", "task_type"}
    not_json = api.post("/api/v1/campaigns", data="{oops", content_type="application/json")
    assert not_json.status_code in (400, 422) and not_json.content_type == PROBLEM
    # A domain rule (a classification pack needs two labels) names its field.
    one_label = api.post("/api/v1/campaigns", {**CAMPAIGN, "labels": ["only"]})
    assert one_label.status_code == 422 and one_label.get_json()["field"] == "labels"


def test_campaigns_are_private_to_their_organization(ctx, api):
    campaign = create(api)
    assert campaign["status"] == "draft" and campaign["packs"][0]["labels"] == ["pos", "neg"]
    assert api.get(f"/api/v1/campaigns/{campaign['id']}").get_json() == campaign
    other = make_org("Globex")
    theirs = ApiClient(api.client, other.write_key)
    for path in ("", "/progress", "/quality", "/results", "/payments"):
        response = theirs.get(f"/api/v1/campaigns/{campaign['id']}{path}")
        assert response.status_code == 404, path
        assert response.content_type == PROBLEM
    assert theirs.post(f"/api/v1/campaigns/{campaign['id']}/pause").status_code == 404
    assert theirs.get("/api/v1/campaigns").get_json()["data"] == []


def test_listing_is_cursor_paginated(api):
    made = [create(api, name=f"Campaign number {n}")["id"] for n in range(3)]
    first = api.get("/api/v1/campaigns?limit=2").get_json()
    assert [c["id"] for c in first["data"]] == made[::-1][:2]
    second = api.get(f"/api/v1/campaigns?limit=2&cursor={first['next_cursor']}").get_json()
    assert [c["id"] for c in second["data"]] == [made[0]] and second["next_cursor"] is None
    bad = api.get("/api/v1/campaigns?cursor=%%%")
    assert bad.status_code == 422 and bad.get_json()["field"] == "cursor"


def test_uploads_keep_good_rows_and_report_bad_lines(api, app):
    campaign = create(api)
    response = upload(api, campaign["id"], [
        {"external_id": "t1", "text": "Fine product."},
        "{this is not json",
        {"external_id": "t2", "text": "Awful support."},
        {"external_id": "t3"},
    ])
    report = response.get_json()
    assert response.status_code == 200
    assert report["imported"] == 2 and report["rejected"] == 2
    assert [p["line"] for p in report["problems"]] == [2, 4]
    assert report["pack_status"] == "open"  # items to label: the pack opened to members
    csv_body = "external_id,text\nt4,Quite good\nt5,\n"
    report = api.post(f"/api/v1/campaigns/{campaign['id']}/items", data=csv_body, content_type="text/csv").get_json()
    assert report["imported"] == 1 and report["problems"][0]["line"] == 3
    multipart = api.post(
        f"/api/v1/campaigns/{campaign['id']}/items",
        data={"items": (io.BytesIO(b'{"external_id": "t6", "text": "From a form."}\n'), "batch.jsonl")},
        content_type="multipart/form-data",
    )
    assert multipart.get_json()["imported"] == 1
    progress = api.get(f"/api/v1/campaigns/{campaign['id']}/progress").get_json()
    assert progress["items"] == 4 and progress["status"] == "active" and progress["packs"][0]["gold_items"] == 2
    app.config["API_MAX_UPLOAD_BYTES"] = 1000
    too_big = upload(api, campaign["id"], [{"external_id": f"x{n}", "text": "y" * 100} for n in range(20)])
    assert too_big.status_code == 413 and too_big.content_type == PROBLEM
    assert api.get(f"/api/v1/campaigns/{campaign['id']}/progress").get_json()["items"] == 4


def test_media_upload_as_multipart(app, api):
    from tests.labeling.conftest import png_bytes

    campaign = create(api, task_type="bounding_boxes", labels=["cat"], gold_items=[])
    response = api.post(
        f"/api/v1/campaigns/{campaign['id']}/items",
        data={
            "items": (io.BytesIO(b"external_id,media\nimg1,a.png\nimg2,missing.png\n"), "items.csv"),
            "media": [(io.BytesIO(png_bytes()), "a.png")],
        },
        content_type="multipart/form-data",
    )
    report = response.get_json()
    assert report["imported"] == 1 and report["media_stored"] == 1
    assert report["problems"][0]["line"] == 3 and "missing" in report["problems"][0]["message"]
    # Once a label is verified, the boxes come out as COCO with each image's confidence.
    from sqlalchemy import select

    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling.models import Item
    from sapien.quality.models import VerifiedLabel

    with app.app_context():
        item = db.session.scalar(select(Item).where(Item.external_id == "img1"))
        db.session.add(VerifiedLabel(item_id=item.id, pack_id=item.pack_id, answer={"boxes": [{"x": 1, "y": 2, "w": 10, "h": 8, "label": "cat"}]},
                                     confidence=0.9, method="box_consensus", labels_used=3, verified_at=utcnow()))
        db.session.commit()
    coco = json.loads(api.get(f"/api/v1/campaigns/{campaign['id']}/results?format=coco").get_data(as_text=True))
    assert coco["categories"][0]["name"] == "cat" and coco["images"][0]["sapien"]["confidence"] == 0.9
    assert coco["annotations"][0]["bbox"] == [1, 2, 10, 8]


def test_idempotency_keys_replay_and_refuse_another_body(api):
    headers = {"Idempotency-Key": "create-1"}
    first = api.post("/api/v1/campaigns", CAMPAIGN, headers=headers)
    again = api.post("/api/v1/campaigns", CAMPAIGN, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(api.get("/api/v1/campaigns").get_json()["data"]) == 1
    other = api.post("/api/v1/campaigns", {**CAMPAIGN, "name": "Something else"}, headers=headers)
    assert other.status_code == 422 and other.content_type == PROBLEM and other.get_json()["field"] == "Idempotency-Key"
    # A refused request is kept too: the same bad request replays the same refusal.
    bad = {"Idempotency-Key": "bad-1"}
    assert api.post("/api/v1/campaigns", {"name": "x"}, headers=bad).status_code == 422
    assert api.post("/api/v1/campaigns", {"name": "x"}, headers=bad).headers.get("Idempotent-Replayed") == "true"


def test_idempotency_keys_expire_after_a_day_and_then_run_as_new(app, api):
    from jobs.api import expire_idempotency_keys
    from sapien.api.idempotency import expire_keys
    from sapien.database import utcnow

    headers = {"Idempotency-Key": "nightly-export"}
    assert api.post("/api/v1/campaigns", CAMPAIGN, headers=headers).status_code == 201
    with app.app_context():
        assert expire_keys(utcnow() + timedelta(hours=23)) == 0  # kept for a day
        assert expire_idempotency_keys() == 0  # the daily job (it keeps today's)
        assert expire_keys(utcnow() + timedelta(hours=25)) == 1
    again = api.post("/api/v1/campaigns", CAMPAIGN, headers=headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers  # a new request, a second campaign
    assert len(api.get("/api/v1/campaigns").get_json()["data"]) == 2


def test_rate_limit_per_key(app, api, org):
    app.config["API_RATE_LIMIT_PER_MINUTE"] = 3
    assert [api.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/api/v1/me")
    assert limited.status_code == 429 and limited.content_type == PROBLEM and int(limited.headers["Retry-After"]) > 0
    assert api.get("/api/v1/me", key=org.read_key).status_code == 200  # another key counts on its own


def test_pause_resume_and_payments(api):
    campaign = create(api)
    upload(api, campaign["id"], [{"external_id": "t1", "text": "Fine."}])
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/pause").get_json()["status"] == "paused"
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/resume").get_json()["status"] == "active"
    path = f"/api/v1/campaigns/{campaign['id']}/payments"
    paid = api.post(path, {"amount": 50000, "currency": "usd", "external_ref": "inv-1"})
    assert paid.status_code == 201 and paid.get_json()["currency"] == "USD"
    assert api.post(path, {"amount": 50000, "external_ref": "inv-1"}).status_code == 200  # recorded once
    assert api.post(path, {"amount": -5, "external_ref": "inv-2"}).status_code == 422
    assert api.post(path, {"amount": "12", "external_ref": "inv-2"}).status_code == 422
    listed = api.get(path).get_json()
    assert listed["total"] == 50000 and len(listed["data"]) == 1 and listed["data"][0]["revenue_shared_at"] is None


def test_a_payment_in_tokens_is_shared_by_the_economy_once(ctx, api):
    from sapien.economy.models import RevenuePayment
    from sapien.extensions import db

    campaign = create(api)
    path = f"/api/v1/campaigns/{campaign['id']}/payments"
    paid = api.post(path, {"amount": 1_000_000, "currency": "SAPIEN", "external_ref": "inv-tokens"})
    assert paid.status_code == 201 and paid.get_json()["revenue_shared_at"] is not None
    assert api.post(path, {"amount": 1_000_000, "currency": "SAPIEN", "external_ref": "inv-tokens"}).status_code == 200
    db.session.remove()
    shared = db.session.scalars(db.select(RevenuePayment).where(RevenuePayment.campaign_id == campaign["id"])).all()
    assert len(shared) == 1 and shared[0].amount == 1_000_000  # one distribution, of the whole payment
    assert shared[0].contributors + shared[0].stakers + shared[0].treasury == 1_000_000


def test_progress_quality_and_results_after_members_label(ctx, app, api):
    from tests.labeling.conftest import make_user

    app.config["QUALITY_CONFIDENCE_THRESHOLD"] = 0.6  # two agreeing answers settle an item
    campaign = create(api)
    upload(api, campaign["id"], [{"external_id": f"t{n}", "text": f"Ticket {n} was great."} for n in range(5)])
    members = [make_user() for _ in range(2)]
    label_everything(campaign["packs"][0]["id"], members, lambda item: {"labels": ["pos"]})
    progress = api.get(f"/api/v1/campaigns/{campaign['id']}/progress").get_json()
    assert progress["verified"] == 5 and progress["remaining"] == 0 and progress["percent_done"] == 100.0
    quality = api.get(f"/api/v1/campaigns/{campaign['id']}/quality").get_json()["packs"][0]
    assert quality["verified"] == 5 and sum(b["labels"] for b in quality["confidence_distribution"]) == 5
    page = api.get(f"/api/v1/campaigns/{campaign['id']}/results?limit=2").get_json()
    assert len(page["data"]) == 2 and page["data"][0]["label"] == "pos" and page["data"][0]["answers"] >= 2
    assert 0 < page["data"][0]["confidence"] <= 1
    seen = [r["external_id"] for r in page["data"]]
    while page["next_cursor"]:
        page = api.get(f"/api/v1/campaigns/{campaign['id']}/results?limit=2&cursor={page['next_cursor']}").get_json()
        seen += [r["external_id"] for r in page["data"]]
    assert sorted(seen) == [f"t{n}" for n in range(5)]
    jsonl = api.get(f"/api/v1/campaigns/{campaign['id']}/results?format=jsonl")
    lines = [json.loads(line) for line in jsonl.get_data(as_text=True).splitlines()]
    assert jsonl.content_type == "application/x-ndjson" and len(lines) == 5 and {"confidence", "answers"} <= set(lines[0])
    limited = api.get(f"/api/v1/campaigns/{campaign['id']}/results?format=csv&limit=3")
    rows = list(csv.DictReader(io.StringIO(limited.get_data(as_text=True))))
    assert len(rows) == 3 and rows[0]["label"] == "pos" and limited.headers["Sapien-Next-Cursor"]
    coco = api.get(f"/api/v1/campaigns/{campaign['id']}/results?format=coco")
    assert coco.status_code == 422 and coco.get_json()["field"] == "format"
