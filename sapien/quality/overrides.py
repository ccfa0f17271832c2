"""A moderator's override of a verified label: the answer they give stands, with who, when and why.

The override is stored on the label itself (method "moderator_override", `overridden_by`, `overridden_at`,
`override_reason`) and written to the audit log in the same transaction. Later aggregation, online
(`online.store_verified_label`, `online.refresh_verified_label`) or batch (`batch._upsert_verified_labels`),
leaves an overridden label alone, and exports read the label, so they carry the override.

An item whose answers never agreed (`Item.no_consensus_at`) has no label to override, or only the batch
model's of a finished pack: the moderator's answer becomes its label, the flag is cleared, and its
waiting answers are verified by it (the agreeing ones paid by the next settlement batch, the others earn
nothing).
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from sapien.database import unit_of_work
from sapien.labeling.answers import validate_answer
from sapien.labeling.errors import InvalidAnswer
from sapien.labeling.models import Item, Media, TaskPack
from sapien.labeling.plain_answers import parse_plain_answer, plain_answer
from sapien.moderation import service as audit
from sapien.quality import convergence, online
from sapien.quality.errors import OverrideError
from sapien.quality.models import VerifiedLabel

OVERRIDE_METHOD = "moderator_override"
MAX_REASON = 1000


def override_label(pack_id: int, item_id: int, *, moderator_id: int, answer: str, reason: str, now: datetime) -> VerifiedLabel:
    """Replace an item's verified label with the moderator's answer (a plain value as in an items file's
    gold column, or JSON). The reason is required; nothing changes when anything is wrong."""
    reason = (reason or "").strip()
    if not reason:
        raise OverrideError(_l("Give a reason for the override: it is kept with the label and in the audit log."), field="reason")
    if len(reason) > MAX_REASON:
        raise OverrideError(_l("The reason is at most 1,000 characters long."), field="reason")
    if not (answer or "").strip():
        raise OverrideError(_l("Give the answer that should stand."), field="answer")
    with unit_of_work() as session:
        item = session.get(Item, item_id)
        if item is None or item.pack_id != pack_id:
            raise OverrideError(_l("That item is not in this pack."))
        if item.is_gold:
            raise OverrideError(_l("Gold items keep their known answer: change it in the items file instead."))
        label = session.get(VerifiedLabel, item.id, with_for_update=True, populate_existing=True)
        # An item whose answers never agreed (with no label, or the batch model's label of a finished pack):
        # the moderator's answer settles it, and its waiting answers are verified by it.
        settling = item.no_consensus_at is not None
        if label is None and not settling:
            raise OverrideError(_l("This item has no verified label yet: there is nothing to override."))
        pack = session.get(TaskPack, pack_id)
        media = session.get(Media, item.media_id) if item.media_id else None
        try:
            canonical = validate_answer(pack, item, parse_plain_answer(pack.task_type, answer), media=media)
        except InvalidAnswer as error:
            raise OverrideError(error.message, field="answer") from None
        if label is None:
            before = ""
            label = VerifiedLabel(item_id=item.id, pack_id=pack.id, submission_ids=[], contributor_ids=[], review_ids=[], labels_used=0)
            session.add(label)
        else:
            before = plain_answer(pack.task_type, label.answer)
        label.answer = canonical
        label.confidence = 1.0
        label.method = OVERRIDE_METHOD
        label.overridden_by = moderator_id
        label.overridden_at = now
        label.override_reason = reason
        label.verified_at = now
        if settling:
            convergence.clear_no_consensus(item)
            online.verify_answers_by_label(item, pack, canonical, now)
        audit.record(
            moderator_id, "label.override", f"item:{item.id}", f"{before[:200]} → {plain_answer(pack.task_type, canonical)[:200]}: {reason}", now
        )
    return label
