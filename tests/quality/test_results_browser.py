"""The per-item results browser: filters, answers and who agreed, a moderator's override (reason required,
audited, kept by later aggregation and exported), and methods named in words."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from sapien.extensions import db
from sapien.quality.models import VerifiedLabel

from .conftest import NOW, answer, items_of, label, make_pack, make_user

HX = {"HX-Request": "true"}


def _pack_with_labels(tmp_path):
    """Three items: i0 agreed by both (verified), i1 split one against one at its maximum of two answers
    (no consensus: no label on one person's word), i2 waiting; one gold item."""
    from sapien.quality import batch

    pack = make_pack(tmp_path, items=3, gold=1, labels_per_item=2, max_labels_per_item=2)
    alice, bob = make_user("alice"), make_user("bob")
    i0, i1, _i2 = items_of(pack.id, gold=False)
    gold = items_of(pack.id, gold=True)[0]
    answer(alice, i0.id, label("pos"))
    answer(bob, i0.id, label("pos"))
    answer(alice, i1.id, label("pos"))
    answer(bob, i1.id, label("neg"))
    answer(alice, gold.id, label("pos"))
    batch.aggregate_pack(pack.id, now=NOW, finalize=True)
    return pack, i0, i1, gold


def test_filters_pick_items_by_status_disagreement_and_gold(app, tmp_path):
    from sapien.quality import results

    with app.test_request_context():
        pack, i0, i1, gold = _pack_with_labels(tmp_path)
        every = results.browse_items(pack.id, {})
        assert every.total == 4 and [r.item.id for r in every.items] == sorted(r.item.id for r in every.items)
        ids = lambda **filters: {r.item.external_id for r in results.browse_items(pack.id, filters).items}  # noqa: E731
        assert ids(status="waiting") == {"i2"}
        assert ids(status="verified") == {"i0"}
        assert ids(status="no_consensus") == {"i1"}
        assert ids(disagreement="disagree") == {"i1"}
        assert ids(disagreement="agree") == {"i0", "g0"}
        assert ids(gold="gold") == {"g0"} and ids(gold="ordinary") == {"i0", "i1", "i2"}
        assert ids(confidence="low", gold="gold") == set()
        assert results.chosen_filters({"status": "verified", "gold": "nonsense", "other": "x"}) == {"status": "verified"}
        agreed = next(r for r in every.items if r.item.id == i0.id)
        assert sorted(agreed.agreed) == ["alice", "bob"] and agreed.label.answer == {"labels": ["pos"]}
        split = next(r for r in every.items if r.item.id == i1.id)
        assert split.label is None and split.agreed == [] and {a.username for a in split.answers} == {"alice", "bob"}
        assert next(r for r in every.items if r.item.id == gold.id).agreed == ["alice"]  # a right gold answer agrees
        second = results.browse_items(pack.id, {}, page=2, per_page=3)
        assert (second.page, second.pages, len(second.items)) == (2, 2, 1)


def test_an_override_needs_a_reason_is_audited_survives_aggregation_and_is_exported(app, tmp_path):
    import pytest

    from sapien.moderation.models import AuditLog
    from sapien.quality import batch, exports, overrides
    from sapien.quality.errors import OverrideError

    with app.test_request_context():
        pack, i0, _i1, gold = _pack_with_labels(tmp_path)
        moderator = make_user("modder", role="moderator")
        with pytest.raises(OverrideError, match="Give a reason"):
            overrides.override_label(pack.id, i0.id, moderator_id=moderator, answer="neg", reason="  ", now=NOW)
        with pytest.raises(OverrideError, match="not one of this pack's labels"):
            overrides.override_label(pack.id, i0.id, moderator_id=moderator, answer="maybe", reason="Checked", now=NOW)
        with pytest.raises(OverrideError, match="Gold items keep"):
            overrides.override_label(pack.id, gold.id, moderator_id=moderator, answer="neg", reason="Checked", now=NOW)
        assert db.session.get(VerifiedLabel, i0.id).method != "moderator_override"  # nothing changed
        overrides.override_label(pack.id, i0.id, moderator_id=moderator, answer="neg", reason="Sarcasm: it is a complaint.", now=NOW)
        audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "label.override")).one()
        assert audit.actor_id == moderator and audit.target == f"item:{i0.id}" and "pos → neg: Sarcasm" in audit.reason
        batch.aggregate_pack(pack.id, now=NOW, finalize=True)
        batch.aggregate_pack(pack.id, now=NOW, method="majority_vote", finalize=True)
        from sapien.labeling.models import Item, TaskPack
        from sapien.quality.online import refresh_verified_label

        refresh_verified_label(db.session.get(Item, i0.id), db.session.get(TaskPack, pack.id), NOW)
        kept = db.session.get(VerifiedLabel, i0.id)
        assert kept.answer == {"labels": ["neg"]} and kept.method == "moderator_override" and kept.overridden_by == moderator
        rows = list(csv.DictReader(io.StringIO("".join(exports.export_csv(pack.id)))))
        row = next(r for r in rows if r["external_id"] == "i0")
        assert (row["answer"], row["method"], row["override_reason"]) == ("neg", "moderator_override", "Sarcasm: it is a complaint.")


def test_browser_pages_fragments_override_form_and_permissions(app, make_member, tmp_path):
    with app.test_request_context():
        pack, i0, _i1, _gold = _pack_with_labels(tmp_path)
        slug, item_id = pack.slug, i0.id
    member, mod = make_member(), make_member(role="moderator")
    base = f"/manage/packs/{slug}/results/items"
    assert member.client.get(base).status_code == 403
    assert member.post(f"{base}/{item_id}/override", {f"i{item_id}-answer": "neg", f"i{item_id}-reason": "x"}).status_code == 403
    page = mod.client.get(base)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and 'name="disagreement"' in body and "4 items match." in body
    assert "Online vote (weighted by member accuracy)" in body or "Calibrated (the model that scores best on gold)" in body
    fragment = mod.client.get(f"{base}?disagreement=disagree", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and "1 item matches." in fragment
    assert mod.client.get(f"{base}?status=bogus&page=99").status_code == 200  # unknown filters are ignored, pages clamp
    assert mod.client.get(f"{base}/999999").status_code == 404
    missing = mod.post(f"{base}/{item_id}/override", {f"i{item_id}-answer": "neg", f"i{item_id}-reason": ""})
    assert missing.status_code == 422 and "Give a reason for the override" in missing.get_data(as_text=True)
    swapped = mod.post(f"{base}/{item_id}/override", {f"i{item_id}-answer": "neg", f"i{item_id}-reason": "Read it again."}, headers=HX)
    text = swapped.get_data(as_text=True)
    assert swapped.status_code == 200 and "<html" not in text and f'id="item-{item_id}"' in text
    assert "Moderator override" in text and "Read it again." in text
    plain = mod.post(f"{base}/{item_id}/override", {f"i{item_id}-answer": "pos", f"i{item_id}-reason": "Changed my mind.", "next": base})
    assert plain.status_code == 303 and plain.headers["Location"] == base
    results_page = mod.client.get(f"/manage/packs/{slug}/results").get_data(as_text=True)
    assert "Moderator override (1)" in results_page and f'href="{base}"' in results_page
