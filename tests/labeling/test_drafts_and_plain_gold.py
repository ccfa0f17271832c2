"""Packs start as drafts and are published with their items; gold in CSV as plain values, documented and
with an example file per task type; every import skips and reports bad rows instead of stopping."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select, update

from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.labeling import errors as labeling_errors
from sapien.labeling import imports, leases, packs
from sapien.labeling.models import MAX_EXTERNAL_ID, Item, TaskPack

from .conftest import NOW, make_media_pack, png_bytes

HX = {"HX-Request": "true"}


def draft_pack(task_type: str = "text_classification", slug: str = "drafty", **settings) -> TaskPack:
    campaign = packs.create_campaign(name="Draft campaign", kind="enterprise", actor_id=None, now=NOW)
    labels = {"text_classification": ["positive", "negative", "neutral"], "image_classification": ["cat", "dog"], "bounding_boxes": ["cat", "dog"]}
    return packs.create_pack(
        campaign.id,
        {"name": "Draft pack", "slug": slug, "task_type": task_type, "label_options": labels.get(task_type, []), "labels_per_item": 1, "gold_rate_percent": 0,
         "review_rate_percent": 0, **settings},
        actor_id=None, now=NOW,
    )


def csv_file(tmp_path, text: str, name: str = "items.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- drafts ---------------------------------------------------------------------------------------

def test_a_new_pack_is_a_draft_until_published_with_items(ctx, tmp_path):
    pack = draft_pack()
    assert pack.status == "draft"
    with pytest.raises(labeling_errors.InvalidSettings, match="no items to label yet"):
        packs.publish_pack(pack.id, now=NOW)
    with pytest.raises(labeling_errors.InvalidSettings, match="no items to label yet"):
        packs.set_pack_status(pack.id, "open", now=NOW)  # opening a draft is publishing it, with the same check
    # Gold items alone are not work.
    imports.import_items(pack.id, csv_file(tmp_path, "external_id,text,gold\ng1,Great,positive\n"), media_dir=None, now=NOW)
    with pytest.raises(labeling_errors.InvalidSettings):
        packs.publish_pack(pack.id, now=NOW)
    member = _member()
    with pytest.raises(labeling_errors.PackLocked, match="not published yet"):
        leases.next_work_item(member, pack.id, NOW)
    imports.import_items(pack.id, csv_file(tmp_path, "external_id,text\ni1,Fine\n", "more.csv"), media_dir=None, now=NOW)
    assert packs.publish_pack(pack.id, now=NOW).status == "open"
    with pytest.raises(labeling_errors.InvalidSettings, match="already published"):
        packs.publish_pack(pack.id, now=NOW)
    assert leases.next_work_item(member, pack.id, NOW) is not None


def _member() -> int:
    from .conftest import make_user

    return make_user()


def test_a_pack_folder_is_published_unless_asked_to_stay_a_draft(app, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "pack.json").write_text(json.dumps({"pack": {"name": "Folder pack", "slug": "folder-draft", "task_type": "text_cleaning"}}))
    (folder / "items.csv").write_text("external_id,text\n1,teh cat\n")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["labeling", "import-folder", "--draft", str(folder)])
    assert result.exit_code == 0 and "a draft" in result.output
    with app.app_context():
        assert packs.get_pack_by_slug("folder-draft").status == "draft"
    more = csv_file(tmp_path, "external_id,text\n2,second\n", "more.csv")
    result = runner.invoke(args=["labeling", "import", "--publish", "folder-draft", str(more)])
    assert result.exit_code == 0 and "pack folder-draft published" in result.output
    with app.app_context():
        assert packs.get_pack_by_slug("folder-draft").status == "open"
    (folder / "pack.json").write_text(json.dumps({"pack": {"name": "Folder pack", "slug": "folder-live", "task_type": "text_cleaning"}}))
    result = runner.invoke(args=["labeling", "import-folder", str(folder)])
    assert result.exit_code == 0 and "(published)" in result.output


def test_members_never_see_a_draft_and_moderators_publish_it(app, make_member, tmp_path):
    with app.test_request_context():
        slug = draft_pack(slug="hidden").slug
    member, mod = make_member(), make_member(role="moderator")
    assert "Draft pack" not in member.client.get("/work").get_data(as_text=True)
    for path in (f"/packs/{slug}", f"/packs/{slug}/work"):
        assert member.client.get(path).status_code == 404
    assert member.post(f"/packs/{slug}/work/start").status_code == 404
    assert member.post(f"/manage/packs/{slug}/publish").status_code == 403
    page = mod.client.get(f"/packs/{slug}").get_data(as_text=True)
    assert "Members cannot see a draft" in page and "This pack has no items yet." in page and "Start working" not in page
    refused = mod.post(f"/manage/packs/{slug}/publish", follow_redirects=True)
    assert "no items to label yet" in refused.get_data(as_text=True)
    upload = mod.client.post(
        f"/manage/packs/{slug}/items", data={"csrf_token": mod.csrf(), "items": (io.BytesIO(b"external_id,text\na,Nice\n"), "items.csv")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 303
    published = mod.post(f"/manage/packs/{slug}/publish", {"next": "/manage/campaigns"})
    assert published.status_code == 303 and published.headers["Location"] == "/manage/campaigns"
    assert member.client.get(f"/packs/{slug}").status_code == 200
    assert "Draft pack" in member.client.get("/work").get_data(as_text=True)


def test_an_empty_or_finished_pack_shows_no_start(app, make_member, tmp_path):
    from .conftest import make_pack

    with app.test_request_context():
        pack = make_pack(tmp_path, items=1, name="Finished pack")
        with unit_of_work():
            db.session.execute(update(Item).where(Item.pack_id == pack.id).values(status="retired"))
        slug = pack.slug
    member = make_member()
    market = member.client.get("/work").get_data(as_text=True)
    card = market[market.index("Finished pack"):]
    assert "All items are done." in card[:1500] and ">Start<" not in card[:1500]
    page = member.client.get(f"/packs/{slug}").get_data(as_text=True)
    assert "All items are done." in page and "Start working" not in page


def test_campaigns_upload_and_pack_pages_link_results_and_exports(app, make_member, tmp_path):
    from .conftest import make_pack

    with app.test_request_context():
        slug = make_pack(tmp_path, items=1).slug
    mod = make_member(role="moderator")
    for path in ("/manage/campaigns", f"/manage/packs/{slug}/items", f"/packs/{slug}"):
        body = mod.client.get(path).get_data(as_text=True)
        assert f'href="/manage/packs/{slug}/results"' in body, path
        assert f'href="/manage/packs/{slug}/results/export.csv"' in body, path


# --- gold as plain values --------------------------------------------------------------------------

def test_plain_gold_values_for_every_task_type(ctx, tmp_path):
    text = draft_pack(slug="plain-text")
    report = imports.import_items(text.id, csv_file(tmp_path, (
        "external_id,text,gold\n"
        "a,Great,positive\n"
        "b,Bad,\"{\"\"labels\"\": [\"\"negative\"\"]}\"\n"  # JSON still works
        "c,Meh,positive|negative\n"  # two labels in a single-label pack
        "d,Odd,happy\n"
    )), media_dir=None, now=NOW)
    assert report.imported == 2
    assert {p.line: p.message for p in report.problems} == {
        4: "The gold answer is not valid: Choose exactly one label.",
        5: "The gold answer is not valid: “happy” is not one of this pack's labels.",
    }
    gold = {item.external_id: item.gold_answer for item in packs.pack_items(text.id)}
    assert gold == {"a": {"labels": ["positive"]}, "b": {"labels": ["negative"]}}
    multi = draft_pack(slug="plain-multi", multi_label=True)
    imports.import_items(multi.id, csv_file(tmp_path, "external_id,text,gold\nm,Both,positive | neutral\n", "m.csv"), media_dir=None, now=NOW)
    assert packs.pack_items(multi.id)[0].gold_answer == {"labels": ["neutral", "positive"]}
    cleaning = draft_pack("text_cleaning", slug="plain-clean")
    imports.import_items(cleaning.id, csv_file(tmp_path, "external_id,text,gold\nt,Teh cat,{The} cat\n", "t.csv"), media_dir=None, now=NOW)
    assert packs.pack_items(cleaning.id)[0].gold_answer == {"text": "{The} cat"}  # free text may start with a brace


def test_plain_boxes_are_checked_against_the_image(ctx, tmp_path):
    rows = [
        {"external_id": "b1", "media": "media/a.png", "gold": "cell:1,2,10,8|cell:20,20,5,5"},
        {"external_id": "b2", "media": "media/a.png", "gold": "cell:1,2,ten,8"},
        {"external_id": "b3", "media": "media/a.png", "gold": "cell 1,2,3,4"},
        {"external_id": "b4", "media": "media/a.png", "gold": "cell:60,2,10,8"},
    ]
    pack, report = make_media_pack(tmp_path, "bounding_boxes", labels=("cell",), rows=rows, files={"media/a.png": png_bytes(64, 48)})
    assert report.imported == 1
    messages = [p.message for p in report.problems]
    assert "whole numbers of pixels" in messages[0] and "label:x,y,w,h" in messages[1] and "outside the image" in messages[2]
    boxes = packs.pack_items(pack.id)[0].gold_answer["boxes"]
    assert [(b["label"], b["x"], b["y"], b["w"], b["h"]) for b in boxes] == [("cell", 1, 2, 10, 8), ("cell", 20, 20, 5, 5)]


@pytest.mark.parametrize("task_type", ["text_classification", "text_cleaning", "image_classification", "bounding_boxes", "audio_transcription"])
def test_each_example_file_imports_cleanly(app, make_member, tmp_path, task_type):
    """The example served for a task type is made from the parser's own definitions: it imports without a problem."""
    from .conftest import wav_bytes

    mod = make_member(role="moderator")
    response = mod.client.get(f"/manage/items-examples/{task_type}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="example-{task_type}.csv"' in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    path = csv_file(tmp_path, body, "example.csv")
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    for line in body.splitlines()[1:]:
        name = line.split(",")[1]
        if "." in name:
            data = wav_bytes() if name.endswith(".wav") else png_bytes(120, 80, fmt="JPEG" if name.endswith(".jpg") else "PNG")
            (media_dir / name).write_bytes(data)
    with app.test_request_context():
        pack = draft_pack(task_type, slug=f"example-{task_type.replace('_', '-')}")
        report = imports.import_items(pack.id, path, media_dir=media_dir, now=NOW)
        assert not report.problems, report.problems
        assert report.imported >= 2 and report.gold >= 1
    assert mod.client.get("/manage/items-examples/nonsense.csv").status_code == 404


def test_the_upload_page_documents_the_format_and_links_the_examples(app, make_member, tmp_path):
    with app.test_request_context():
        slug = draft_pack(slug="doc-pack").slug
    body = make_member(role="moderator").client.get(f"/manage/packs/{slug}/items").get_data(as_text=True)
    assert "the label, or labels separated by | when the pack allows several" in body and "for example negative" in body
    assert 'href="/manage/items-examples/text_classification.csv"' in body and 'href="/manage/items-examples/bounding_boxes.csv"' in body


# --- bad rows are skipped, never the end of the import ----------------------------------------------

def test_long_ids_fit_and_bad_rows_are_skipped_with_their_line(ctx, tmp_path):
    pack = draft_pack(slug="rows-pack")
    longest = "x" * MAX_EXTERNAL_ID
    content = (
        b"external_id,text\n"
        + f"{longest},The longest id\n".encode()
        + b"bad,\xff\xfe not utf-8\n"
        + ("huge,\"" + "y" * 140_000 + "\"\n").encode()
        + f"{'z' * (MAX_EXTERNAL_ID + 1)},Too long\n".encode()
        + b"after,Still imported\n"
    )
    path = tmp_path / "rows.csv"
    path.write_bytes(content)
    report = imports.import_items(pack.id, path, media_dir=None, now=NOW)
    assert report.imported == 2
    problems = {p.line: p.message for p in report.problems}
    assert problems[3] == "This row is not UTF-8 text."
    assert "not valid CSV" in problems[4]
    assert problems[5] == "The external_id is longer than 2,048 characters."
    assert set(db.session.scalars(select(Item.external_id).where(Item.pack_id == pack.id))) == {longest, "after"}


def test_the_cli_reports_how_many_rows_it_skipped(app, tmp_path):
    with app.test_request_context():
        slug = draft_pack(slug="cli-rows").slug
    path = csv_file(tmp_path, "external_id,text\na,fine\n,no id\nb,fine too\n,again\n")
    result = app.test_cli_runner().invoke(args=["labeling", "import", slug, str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 2 item(s)" in result.output
    assert "2 row(s) skipped:" in result.output and "line 3: The external_id is missing." in result.output
