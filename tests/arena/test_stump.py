"""Stump the model: an item the baseline gets wrong is confirmed by others and lands in the campaign's data."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.arena.conftest import NOW, members


def _text_pack(tmp_path):
    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.labeling.models import Item
    from sapien.quality.models import VerifiedLabel
    from tests.labeling.conftest import make_pack

    pack = make_pack(tmp_path, items=0, label_options=["pos", "neg"])
    texts = [("I love this, wonderful and great", "pos"), ("great product, love it", "pos"), ("wonderful day, lovely", "pos"),
             ("terrible, I hate it", "neg"), ("awful and bad, hate", "neg"), ("bad experience, terrible service", "neg")]
    with unit_of_work() as session:
        for n, (text, label) in enumerate(texts):
            item = Item(pack_id=pack.id, external_id=f"s{n}", payload={"text": text}, created_at=NOW)
            session.add(item)
            session.flush()
            session.add(VerifiedLabel(item_id=item.id, pack_id=pack.id, answer={"labels": [label]}, confidence=1.0, method="test", verified_at=NOW))
    db.session.expire_all()
    return pack


def test_a_fooling_item_is_confirmed_and_becomes_gold_data(ctx, tmp_path):
    from sapien.arena import stump
    from sapien.arena.errors import ArenaError
    from sapien.extensions import db
    from sapien.labeling.models import Item
    from sapien.ledger import service as ledger

    pack = _text_pack(tmp_path)
    author, first, second = members(3)
    with pytest.raises(ArenaError, match="got that one right"):
        stump.submit(author, pack.id, "I love it, great and wonderful", "pos", NOW)
    with pytest.raises(ArenaError, match="between"):
        stump.submit(author, pack.id, "short", "neg", NOW)
    row = stump.submit(author, pack.id, "I would love it if it were not so terrible... great, just great.", "neg", NOW)
    assert row.status == "pending" and row.model_label == "pos"
    with pytest.raises(ArenaError, match="Others confirm"):
        stump.confirm(row.id, author, "neg", NOW)
    assert stump.confirm(row.id, first, "neg", NOW).status == "pending"
    with pytest.raises(ArenaError, match="already confirmed"):
        stump.confirm(row.id, first, "neg", NOW)
    done = stump.confirm(row.id, second, "neg", NOW)
    assert done.status == "confirmed"
    item = db.session.scalar(select(Item).where(Item.id == done.item_id))
    assert item.pack_id == pack.id and item.is_gold and item.gold_answer == {"labels": ["neg"]} and "terrible" in item.payload["text"]
    assert ledger.balance(author, "points") == stump.STUMP_POINTS
    assert stump.to_confirm(first) == []


def test_the_stump_page_refuses_bad_input_with_a_message(app, tmp_path, make_member):
    member = make_member("writer")
    with app.test_request_context():
        pack = _text_pack(tmp_path)
        pack_id = pack.id
    page = member.client.get("/arena/stump")
    assert page.status_code == 200 and "Stump the model" in page.get_data(as_text=True)
    bad = member.post("/arena/stump", {"pack_id": pack_id, "text": "x", "label": "neg"})
    assert bad.status_code == 422 and "Write between" in bad.get_data(as_text=True)
    ok = member.post("/arena/stump", {"pack_id": pack_id, "text": "I would love it if it were not so terrible, great, just great.", "label": "neg"})
    assert ok.status_code == 303
