"""The API's request and response shapes (marshmallow); flask-smorest builds the OpenAPI document from them."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from sapien.api.models import KEY_SCOPES, WEBHOOK_EVENTS
from sapien.labeling.models import TASK_TYPES


class ProblemSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    field = fields.String()
    errors = fields.Dict()
    problems = fields.List(fields.Dict())


class GoldItemSchema(Schema):
    class Meta:
        unknown = INCLUDE

    external_id = fields.String(required=True, validate=validate.Length(1, 2048))
    text = fields.String()
    gold = fields.Raw(required=True, metadata={"description": "The right answer: a label, `a|b`, or the canonical JSON answer."})
    explanation = fields.String()


class PackInSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(3, 120))
    task_type = fields.String(required=True, validate=validate.OneOf(TASK_TYPES))
    labels = fields.List(fields.String(validate=validate.Length(1, 64)), load_default=list)
    guidelines = fields.String(load_default="", validate=validate.Length(max=20000))
    redundancy = fields.Integer(load_default=3, validate=validate.Range(1, 50), metadata={"description": "Answers wanted per item."})
    multi_label = fields.Boolean(load_default=False)
    reward_points = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 100000))
    gold_items = fields.List(fields.Nested(GoldItemSchema), load_default=list)


class CampaignInSchema(PackInSchema):
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    budget_points = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0))
    deadline = fields.AwareDateTime(load_default=None, allow_none=True)


class PackSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    task_type = fields.String(required=True)
    status = fields.String(required=True)
    labels = fields.List(fields.String(), required=True)
    redundancy = fields.Integer(required=True)


class CampaignSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("draft", "active", "paused", "done")))
    budget_points = fields.Integer(allow_none=True, required=True)
    deadline = fields.DateTime(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    packs = fields.List(fields.Nested(PackSchema), required=True)


class CampaignListSchema(Schema):
    data = fields.List(fields.Nested(CampaignSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ListArgsSchema(Schema):
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class PackProgressSchema(Schema):
    pack_id = fields.Integer(required=True)
    name = fields.String(required=True)
    task_type = fields.String(required=True)
    status = fields.String(required=True)
    items = fields.Integer(required=True)
    gold_items = fields.Integer(required=True)
    verified = fields.Integer(required=True)
    no_consensus = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    answers = fields.Integer(required=True)


class ProgressSchema(Schema):
    campaign_id = fields.Integer(required=True)
    status = fields.String(required=True)
    items = fields.Integer(required=True)
    verified = fields.Integer(required=True)
    no_consensus = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    answers = fields.Integer(required=True)
    percent_done = fields.Float(required=True)
    spent_points = fields.Integer(required=True)
    budget_points = fields.Integer(allow_none=True, required=True)
    deadline = fields.DateTime(allow_none=True, required=True)
    packs = fields.List(fields.Nested(PackProgressSchema), required=True)


class BucketSchema(Schema):
    from_ = fields.Float(required=True, data_key="from")
    to = fields.Float(required=True)
    labels = fields.Integer(required=True)


class PackQualitySchema(Schema):
    pack_id = fields.Integer(required=True)
    name = fields.String(required=True)
    agreement = fields.Float(allow_none=True, required=True)
    agreement_kind = fields.String(required=True)
    gold_accuracy = fields.Float(allow_none=True, required=True)
    gold_answers = fields.Integer(required=True)
    verified = fields.Integer(required=True)
    mean_confidence = fields.Float(allow_none=True, required=True)
    labels_per_item = fields.Float(allow_none=True, required=True)
    confidence_distribution = fields.List(fields.Nested(BucketSchema), required=True)


class QualitySchema(Schema):
    campaign_id = fields.Integer(required=True)
    packs = fields.List(fields.Nested(PackQualitySchema), required=True)


class UploadArgsSchema(Schema):
    pack_id = fields.Integer(load_default=None)


class UploadProblemSchema(Schema):
    line = fields.Integer(required=True)
    message = fields.String(required=True)


class UploadReportSchema(Schema):
    pack_id = fields.Integer(required=True)
    imported = fields.Integer(required=True)
    gold = fields.Integer(required=True)
    media_stored = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    problems = fields.List(fields.Nested(UploadProblemSchema), required=True)
    pack_status = fields.String(required=True)


class ResultArgsSchema(Schema):
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=None, validate=validate.Range(1, 1_000_000),
                           metadata={"description": "JSON pages hold at most 1,000 (100 by default); JSONL and CSV stream everything unless limited."})
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "jsonl", "csv", "coco")))
    pack_id = fields.Integer(load_default=None, metadata={"description": "COCO: which bounding-box pack."})


class ResultSchema(Schema):
    item_id = fields.Integer(required=True)
    external_id = fields.String(required=True)
    pack_id = fields.Integer(required=True)
    label = fields.String(required=True, metadata={"description": "The answer flattened: labels joined by |, the text, or the box count."})
    answer = fields.Dict(required=True)
    confidence = fields.Float(required=True)
    answers = fields.Integer(required=True, metadata={"description": "How many answers the label rests on."})
    method = fields.String(required=True)
    verified_at = fields.String(required=True)


class ResultPageSchema(Schema):
    data = fields.List(fields.Nested(ResultSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class PaymentInSchema(Schema):
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(1), metadata={"description": "In the currency's smallest unit (cents; SAPIEN: token base units)."})
    currency = fields.String(load_default="USD", validate=validate.Length(3, 8), metadata={"description": "A payment in SAPIEN is shared at once among the campaign's contributors, the stakers and the treasury; other currencies are recorded for the accounts."})
    external_ref = fields.String(required=True, validate=validate.Length(1, 200))


class PaymentSchema(Schema):
    id = fields.Integer(required=True)
    campaign_id = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    external_ref = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    revenue_shared_at = fields.DateTime(allow_none=True, attribute="forwarded_at", metadata={"description": "When the revenue share paid it out (SAPIEN payments)."})


class PaymentListSchema(Schema):
    data = fields.List(fields.Nested(PaymentSchema), required=True)
    total = fields.Integer(required=True)


class WebhookInSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(1, 2000))
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True, validate=validate.Length(min=1))


class WebhookSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    secret = fields.String(metadata={"description": "The signing secret; returned when the webhook is created."})


class WebhookListSchema(Schema):
    data = fields.List(fields.Nested(WebhookSchema), required=True)


class DeliverySchema(Schema):
    id = fields.Integer(required=True)
    event = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(allow_none=True, required=True)
    last_error = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(allow_none=True, required=True)
    payload = fields.Dict(required=True)


class DeliveryListSchema(Schema):
    data = fields.List(fields.Nested(DeliverySchema), required=True)


class MeSchema(Schema):
    organization_id = fields.Integer(required=True)
    organization = fields.String(required=True)
    key_id = fields.Integer(required=True)
    scope = fields.String(required=True, validate=validate.OneOf(KEY_SCOPES))


class CocoSchema(Schema):
    """COCO object detection (`format=coco`, bounding-box packs): each image carries its label's confidence
    and provenance under "sapien"; each annotation's "score" is that confidence."""

    class Meta:
        unknown = INCLUDE

    info = fields.Dict(required=True)
    categories = fields.List(fields.Dict(), required=True)
    images = fields.List(fields.Dict(), required=True)
    annotations = fields.List(fields.Dict(), required=True)
