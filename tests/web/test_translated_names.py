"""Names the site used to print raw, in English, on French and Indonesian pages: task types on the boards,
filters and pack pages, box counts in worked examples, and time zones in the settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.labeling.conftest import make_pack

RAW_TASK_TYPES = re.compile(r"bounding[ _]boxes|text[ _]cleaning|text[ _]classification", re.IGNORECASE)


def visible_text(page: str) -> str:
    """The page's words without its tags and attribute values (a <select>'s values stay ids)."""
    return re.sub(r"<[^>]+>", " ", page)


@pytest.fixture
def world(app, make_member, tmp_path):
    from sapien.ledger import service as ledger

    with app.test_request_context():
        make_pack(tmp_path, items=2, name="Fix the typos", task_type="text_cleaning", label_options=[])
        boxes = make_pack(tmp_path, items=0, name="Count the coins", task_type="bounding_boxes", label_options=["coin"],
                          examples=[{"input": "Two coins touching", "answer": "2 boxes", "why": "One box each."},
                                    {"input": "A sliver of a coin", "answer": "no boxes", "why": "Too little of it."},
                                    {"input": "A coin on a coin", "answer": "1 box", "why": "Only the top one shows."},
                                    {"input": "A blurred coin", "answer": "skip it", "why": "Written by the moderator."}])
        boxes_slug = boxes.slug
    member = make_member("ana")
    with app.app_context():
        now = datetime.now(UTC)
        for number, kind in enumerate(("labeling:text_cleaning", "labeling:bounding_boxes", "labeling:text_classification")):
            ledger.credit(member.id, "xp", 10, kind=kind, key=f"names:{number}", now=now)
    return member, boxes_slug


@pytest.mark.parametrize("language, cleaning_name, two_boxes, no_boxes, paris", [
    ("fr", "Nettoyage de texte", "2 cadres", "aucun cadre", "Paris (France) — heure d’Europe centrale"),
    ("id", "Pembersihan teks", "2 kotak", "tanpa kotak", "Paris (Prancis) — Waktu Eropa Tengah"),
])
def test_pages_name_things_in_the_members_language(world, language, cleaning_name, two_boxes, no_boxes, paris):
    member, boxes_slug = world
    assert member.post("/language", {"locale": language}).status_code == 303
    get = member.client.get

    board = get("/leaderboards/?task=text_cleaning").get_data(as_text=True)
    assert f">{cleaning_name}</option>" in board and cleaning_name in board.split('id="board-title"')[1][:400]
    for page in (board, get("/leaderboards/me").get_data(as_text=True),
                 get("/work").get_data(as_text=True), get(f"/packs/{boxes_slug}").get_data(as_text=True)):
        assert not RAW_TASK_TYPES.search(visible_text(page)), RAW_TASK_TYPES.search(visible_text(page))

    pack = visible_text(get(f"/packs/{boxes_slug}").get_data(as_text=True))
    assert two_boxes in pack and no_boxes in pack and "2 boxes" not in pack and "no boxes" not in pack
    assert "skip it" in pack  # an answer that is not a count stays as the moderator wrote it

    settings = get("/settings").get_data(as_text=True)
    assert f'<option value="Europe/Paris">{paris}</option>' in settings
    assert ">Europe/Paris<" not in settings and ">America/New York<" not in settings


def test_the_one_mapping_names_every_task_type():
    from sapien.i18n import TASK_TYPE_NAMES
    from sapien.labeling.forms import TASK_TYPE_CHOICES
    from sapien.labeling.models import TASK_TYPES

    assert tuple(TASK_TYPE_NAMES) == TASK_TYPES
    assert [value for value, _label in TASK_TYPE_CHOICES] == list(TASK_TYPES)


def test_a_time_zone_keeps_its_id_as_the_value_sent(make_member):
    ana = make_member("ana")
    response = ana.post("/settings", {"display_name": "Ana", "timezone": "Asia/Jakarta", "locale": "id", "country": "", "bio": ""})
    assert response.status_code == 303
    settings = ana.client.get("/settings").get_data(as_text=True)
    assert '<option selected value="Asia/Jakarta">Jakarta (Indonesia)</option>' in settings


@pytest.mark.parametrize(("language", "written"), [
    ("en", ["7", "999", "1,000", "12,345", "2.5"]),
    ("fr", ["7", "999", "1\u202f000", "12\u202f345", "2,5"]),
    ("id", ["7", "999", "1.000", "12.345", "2,5"]),
])
def test_figures_are_written_as_each_language_writes_them(app, language, written):
    from decimal import Decimal

    from sapien.i18n import format_number

    with app.test_request_context(headers={"Accept-Language": language}):
        assert [format_number(value) for value in (7, 999, 1000, 12345, Decimal("2.5"))] == written
