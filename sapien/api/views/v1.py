"""`/api/v1`: the JSON API for client organizations (flask-smorest; the OpenAPI document is built from
these routes and `sapien.api.schemas`).

Every request carries `Authorization: Bearer sk_…`; a read key may call GETs, a write key everything.
Each route parses input, calls one service function and shapes the answer. Errors are problem+json.
"""

from __future__ import annotations

from http import HTTPStatus

from flask import Response, current_app, g, request, stream_with_context
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException

from sapien.api import campaigns, idempotency, keys, results, status, webhooks
from sapien.api.errors import ApiError, RateLimited
from sapien.api.models import Organization
from sapien.api.schemas import (
    CampaignInSchema,
    CampaignListSchema,
    CampaignSchema,
    DeliveryListSchema,
    DeliverySchema,
    ListArgsSchema,
    MeSchema,
    PackInSchema,
    PackSchema,
    PaymentInSchema,
    PaymentListSchema,
    PaymentSchema,
    ProgressSchema,
    QualitySchema,
    ResultArgsSchema,
    ResultPageSchema,
    UploadArgsSchema,
    UploadReportSchema,
    WebhookInSchema,
    WebhookListSchema,
    WebhookSchema,
)
from sapien.database import utcnow
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.problems import problem

blp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Campaigns, items, results, payments and webhooks of a client organization.")

READ_ERRORS = (401, 403, 404, 422, 429)
WRITE_ERRORS = (401, 403, 404, 409, 422, 429)


def errors(*codes: int):
    """Document the problem+json answers a route may give."""

    def decorator(view):
        for code in codes:
            view = blp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return decorator


IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Replays the first answer for the same key; the same key with a different body is refused (422).",
}


def idempotent(view):
    return blp.doc(parameters=[IDEMPOTENCY_HEADER])(view)


# --- authentication, rate limit, idempotency --------------------------------------------------------

@blp.before_request
def _authenticate():
    request.max_content_length = current_app.config.get("API_MAX_UPLOAD_BYTES", 32 * 1024 * 1024)
    now = utcnow()
    g.api_caller = keys.authenticate(request.headers.get("Authorization"), now=now)
    g.api_remaining = keys.count_request(g.api_caller.key_id, now=now)
    if request.method == "POST":
        g.api_caller.require("write")
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            body = request.get_data(cache=True)
            print_ = idempotency.fingerprint(request.method, request.path, request.query_string, body)
            claimed = idempotency.claim(g.api_caller.organization_id, key, print_, now=now)
            if isinstance(claimed, idempotency.Replay):
                response = Response(claimed.body, status=claimed.status, content_type=claimed.content_type)
                response.headers["Idempotent-Replayed"] = "true"
                return response
            g.api_idempotency_claim = claimed
    return None


@blp.after_request
def _finish(response: Response) -> Response:
    claim = g.pop("api_idempotency_claim", None)
    if claim is not None:
        idempotency.finish(claim, status=response.status_code, content_type=response.content_type or "application/json", body=response.get_data(as_text=True))
    response.headers["Cache-Control"] = "no-store"
    if getattr(g, "api_remaining", -1) >= 0:
        response.headers["RateLimit-Remaining"] = str(g.api_remaining)
    return response


@blp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    db.session.rollback()
    status = getattr(error, "status", 422)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="sapien"'}
    return problem(status, str(error.message), slug=getattr(error, "slug", None), headers=headers, field=error.field)


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if messages:
        # webargs' validation errors, by location then field: {"json": {"name": ["…"]}}
        flat = {field: value for located in messages.values() for field, value in (located.items() if isinstance(located, dict) else [])}
        return problem(422, str(_l("Some fields are not valid.")), slug="validation", errors=flat)
    return problem(error.code or 500, getattr(error, "user_message", None) or error.description)


# --- who am I ---------------------------------------------------------------------------------------

@blp.route("/me")
@blp.response(200, MeSchema)
@errors(*READ_ERRORS)
def me():
    """The organization and scope of the key making the call."""
    caller = g.api_caller
    organization = db.session.get(Organization, caller.organization_id)
    return {"organization_id": organization.id, "organization": organization.name, "key_id": caller.key_id, "scope": caller.scope}


# --- campaigns --------------------------------------------------------------------------------------

def campaign_out(campaign) -> dict:
    packs = campaigns.campaign_packs(campaign.id)
    terms = campaigns.campaign_terms(campaign.id)
    return {
        "id": campaign.id,
        "name": campaign.name,
        "description": campaign.description,
        "status": campaigns.campaign_state(campaign, [pack.status for pack in packs], terms),
        "budget_points": terms.budget_points if terms else None,
        "deadline": terms.deadline if terms else None,
        "created_at": campaign.created_at,
        "packs": [pack_out(pack) for pack in packs],
    }


def pack_out(pack) -> dict:
    return {"id": pack.id, "name": pack.name, "task_type": pack.task_type, "status": pack.status, "labels": list(pack.label_options or []),
            "redundancy": pack.labels_per_item}


def _pack_spec(data: dict) -> campaigns.PackSpec:
    return campaigns.PackSpec(
        name=data["name"], task_type=data["task_type"], labels=data["labels"], guidelines=data["guidelines"], redundancy=data["redundancy"],
        multi_label=data["multi_label"], reward_points=data["reward_points"], gold_items=data["gold_items"],
    )


@blp.route("/campaigns", methods=["POST"])
@blp.arguments(CampaignInSchema)
@blp.response(201, CampaignSchema)
@errors(*WRITE_ERRORS)
@idempotent
def create_campaign(data):
    """Create a campaign with its first pack: task type, labels, guidelines, redundancy, gold items, budget, deadline."""
    spec = campaigns.CampaignSpec(
        name=data["name"], pack=_pack_spec(data), description=data["description"], budget_points=data["budget_points"], deadline=data["deadline"]
    )
    campaign = campaigns.create_campaign(g.api_caller.organization_id, spec, now=utcnow())
    return campaign_out(campaign)


@blp.route("/campaigns", methods=["GET"])
@blp.arguments(ListArgsSchema, location="query")
@blp.response(200, CampaignListSchema)
@errors(*READ_ERRORS)
def list_campaigns(args):
    """The organization's campaigns, newest first (cursor-paginated)."""
    after = results.decode_cursor(args["cursor"])
    found = campaigns.list_campaigns(g.api_caller.organization_id, after_id=after, limit=args["limit"] + 1)
    more = len(found) > args["limit"]
    found = found[: args["limit"]]
    return {"data": [campaign_out(c) for c in found], "next_cursor": results.encode_cursor(found[-1].id) if more and found else None}


@blp.route("/campaigns/<int:campaign_id>")
@blp.response(200, CampaignSchema)
@errors(*READ_ERRORS)
def read_campaign(campaign_id: int):
    """One campaign with its packs."""
    return campaign_out(campaigns.own_campaign(g.api_caller.organization_id, campaign_id))


@blp.route("/campaigns/<int:campaign_id>/pause", methods=["POST"])
@blp.response(200, CampaignSchema)
@errors(*WRITE_ERRORS)
@idempotent
def pause_campaign(campaign_id: int):
    """Pause every open pack: members get no more of its items."""
    campaign = campaigns.set_paused(g.api_caller.organization_id, campaign_id, True, now=utcnow())
    status.forget_status(campaign_id)
    return campaign_out(campaign)


@blp.route("/campaigns/<int:campaign_id>/resume", methods=["POST"])
@blp.response(200, CampaignSchema)
@errors(*WRITE_ERRORS)
@idempotent
def resume_campaign(campaign_id: int):
    """Open every paused (or draft, with items) pack again."""
    campaign = campaigns.set_paused(g.api_caller.organization_id, campaign_id, False, now=utcnow())
    status.forget_status(campaign_id)
    return campaign_out(campaign)


@blp.route("/campaigns/<int:campaign_id>/packs", methods=["POST"])
@blp.arguments(PackInSchema)
@blp.response(201, PackSchema)
@errors(*WRITE_ERRORS)
@idempotent
def create_pack(data, campaign_id: int):
    """Add another pack to a campaign."""
    return pack_out(campaigns.add_pack(g.api_caller.organization_id, campaign_id, _pack_spec(data), now=utcnow()))


ITEMS_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "items": {"type": "string", "format": "binary", "description": "The items file (.jsonl or .csv)."},
                    "media": {"type": "array", "items": {"type": "string", "format": "binary"}, "description": "Media files the rows name."},
                },
                "required": ["items"],
            }
        },
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


@blp.route("/campaigns/<int:campaign_id>/items", methods=["POST"])
@blp.arguments(UploadArgsSchema, location="query")
@blp.response(200, UploadReportSchema)
@errors(*WRITE_ERRORS, 413)
@idempotent
@blp.doc(requestBody=ITEMS_BODY)
def upload_items(args, campaign_id: int):
    """Upload items as JSONL or CSV (a body of that type, or a multipart form with media files).

    Rows are checked one by one: a bad row is reported with its line number and the others are kept.
    A draft pack that now has items is opened to members.
    """
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("items")
        if upload is None:
            raise ApiError(_l("Send the items file in the “items” field."), field="items")
        filename, content = upload.filename or "", upload.read()
        media = [(file.filename or "", file.read()) for file in request.files.getlist("media")]
    elif request.mimetype in ("application/x-ndjson", "application/jsonl", "application/json"):
        filename, content, media = "items.jsonl", request.get_data(), []
    elif request.mimetype == "text/csv":
        filename, content, media = "items.csv", request.get_data(), []
    else:
        raise ApiError(_l("Send items as application/x-ndjson, text/csv or a multipart form."), field="items")
    report = campaigns.upload_items(
        g.api_caller.organization_id, campaign_id, filename=filename, content=content, media=media, pack_id=args["pack_id"], now=utcnow()
    )
    status.forget_status(campaign_id)
    return {
        "pack_id": report.pack_id, "imported": report.imported, "gold": report.gold, "media_stored": report.media_stored,
        "rejected": len(report.problems), "problems": [{"line": p.line, "message": str(p.message)} for p in report.problems],
        "pack_status": report.pack_status,
    }


@blp.route("/campaigns/<int:campaign_id>/progress")
@blp.response(200, ProgressSchema)
@errors(*READ_ERRORS)
def campaign_progress(campaign_id: int):
    """Items, verified labels, answers, spend and state (the status endpoint to poll; it may lag a change by up to 2 s)."""
    return status.campaign_status(g.api_caller.organization_id, campaign_id)


@blp.route("/campaigns/<int:campaign_id>/quality")
@blp.response(200, QualitySchema)
@errors(*READ_ERRORS)
def campaign_quality(campaign_id: int):
    """Agreement, gold accuracy and the confidence distribution, per pack."""
    return results.quality_report(g.api_caller.organization_id, campaign_id)


RESULT_STREAMS = {
    # JSON is a page of results, or COCO with format=coco.
    "application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/ResultPage"}, {"$ref": "#/components/schemas/Coco"}]}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "One JSON result per line (the fields of Result)."}},
    "text/csv": {"schema": {"type": "string"}},
}


@blp.route("/campaigns/<int:campaign_id>/results")
@blp.arguments(ResultArgsSchema, location="query")
@blp.response(200, ResultPageSchema)
@blp.doc(responses={200: {"content": RESULT_STREAMS}})
@errors(*READ_ERRORS)
def campaign_results(args, campaign_id: int):
    """Verified labels, each with its confidence and number of answers: JSON pages with a cursor, or a
    JSONL/CSV stream (`Sapien-Next-Cursor` names the next page when `limit` cut it), or COCO for boxes."""
    organization_id = g.api_caller.organization_id
    fmt = args["format"]
    if fmt == "json":
        limit = min(args["limit"] or 100, 1000)
        page = results.results_page(organization_id, campaign_id, cursor=args["cursor"], limit=limit)
        return {"data": page.records, "next_cursor": page.next_cursor}
    if fmt == "coco":
        chunks = results.coco(organization_id, campaign_id, args["pack_id"])
        return Response(stream_with_context(chunks), mimetype="application/json")
    limit = args["limit"]
    headers = {}
    if limit is not None:
        # A limited stream says where the next one starts.
        rows = [row for batch in results.stream_rows(organization_id, campaign_id, cursor=args["cursor"], limit=limit + 1) for row in batch]
        if len(rows) > limit:
            rows = rows[:limit]
            headers["Sapien-Next-Cursor"] = results.encode_cursor(rows[-1][0])
        batches = iter([rows])
    else:
        batches = results.stream_rows(organization_id, campaign_id, cursor=args["cursor"], limit=None)
    body = results.as_jsonl(batches) if fmt == "jsonl" else results.as_csv(batches)
    mimetype = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    return Response(stream_with_context(body), mimetype=mimetype, headers=headers)


# --- payments ---------------------------------------------------------------------------------------

def payment_out(payment) -> dict:
    return {"id": payment.id, "campaign_id": payment.campaign_id, "amount": payment.amount, "currency": payment.currency,
            "external_ref": payment.external_ref, "created_at": payment.created_at, "forwarded_at": payment.forwarded_at}


@blp.route("/campaigns/<int:campaign_id>/payments", methods=["POST"])
@blp.arguments(PaymentInSchema)
@blp.response(201, PaymentSchema)
@blp.alt_response(200, schema=PaymentSchema, description="This payment (same external_ref) was already recorded.", success=True)
@errors(*WRITE_ERRORS)
@idempotent
def record_payment(data, campaign_id: int):
    """Record a payment for a campaign (once per external_ref); it feeds the revenue share."""
    payment, created = campaigns.record_payment(
        g.api_caller.organization_id, campaign_id, amount=data["amount"], currency=data["currency"], external_ref=data["external_ref"],
        key_id=g.api_caller.key_id, now=utcnow(),
    )
    return payment_out(payment), 201 if created else 200


@blp.route("/campaigns/<int:campaign_id>/payments", methods=["GET"])
@blp.response(200, PaymentListSchema)
@errors(*READ_ERRORS)
def list_payments(campaign_id: int):
    """The payments recorded for a campaign."""
    found = campaigns.payments(g.api_caller.organization_id, campaign_id)
    return {"data": [payment_out(p) for p in found], "total": sum(p.amount for p in found)}


# --- webhooks ---------------------------------------------------------------------------------------

def webhook_out(webhook, secret: str | None = None) -> dict:
    out = {"id": webhook.id, "url": webhook.url, "events": list(webhook.events or []), "active": webhook.active, "created_at": webhook.created_at}
    if secret:
        out["secret"] = secret
    return out


def delivery_out(delivery) -> dict:
    return {"id": delivery.id, "event": delivery.event, "status": delivery.status, "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code, "last_error": delivery.last_error, "created_at": delivery.created_at,
            "delivered_at": delivery.delivered_at, "payload": delivery.payload}


@blp.route("/webhooks", methods=["POST"])
@blp.arguments(WebhookInSchema)
@blp.response(201, WebhookSchema)
@errors(*WRITE_ERRORS)
@idempotent
def create_webhook(data):
    """Register a URL for events (item.verified, campaign.done, budget.low). The answer holds the signing secret.

    Each delivery is a POST with `Sapien-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
    `Sapien-Event` and `Sapien-Delivery` (the delivery id, to ignore a repeat). Refuse a timestamp more
    than five minutes old. `campaign.done` says why in `reason`: `finished` (every item done) or `deadline`
    (the deadline passed; `unfinished` counts the items left).
    """
    webhook, secret = webhooks.register_webhook(g.api_caller.organization_id, url=data["url"], events=data["events"], now=utcnow())
    return webhook_out(webhook, secret)


@blp.route("/webhooks", methods=["GET"])
@blp.response(200, WebhookListSchema)
@errors(*READ_ERRORS)
def list_webhooks():
    """The organization's webhooks."""
    return {"data": [webhook_out(w) for w in webhooks.organization_webhooks(g.api_caller.organization_id)]}


@blp.route("/webhooks/<int:webhook_id>/deliveries")
@blp.response(200, DeliveryListSchema)
@errors(*READ_ERRORS)
def list_deliveries(webhook_id: int):
    """The delivery log of a webhook, newest first."""
    return {"data": [delivery_out(d) for d in webhooks.deliveries(g.api_caller.organization_id, webhook_id)]}


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@blp.response(202, DeliverySchema)
@errors(*WRITE_ERRORS)
@idempotent
def redeliver(webhook_id: int, delivery_id: int):
    """Send a delivery again (a new round of attempts)."""
    return delivery_out(webhooks.redeliver(g.api_caller.organization_id, webhook_id, delivery_id, now=utcnow()))

