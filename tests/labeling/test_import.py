"""Importing items: JSONL and CSV, bad lines reported by number, media checked by content, nothing half-imported."""

from __future__ import annotations

import io
import json

from sqlalchemy import func, select

from sapien.extensions import db
from sapien.labeling import access, imports
from sapien.labeling import errors as labeling_errors
from sapien.labeling import packs as labeling_packs
from sapien.labeling.models import Item, Media

from .conftest import NOW, make_media_pack, make_pack, png_bytes, wav_bytes


def noisy_png() -> bytes:
    import os

    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (60, 60), os.urandom(60 * 60 * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def problems(report) -> dict[int, str]:
    return {problem.line: problem.message for problem in report.problems}


def test_jsonl_bad_lines_are_reported_and_good_ones_imported(ctx, tmp_path):
    pack = make_pack(tmp_path, items=0, labels_per_item=2)
    lines = [
        json.dumps({"external_id": "a", "text": "Fine."}),
        "{not json",
        json.dumps({"text": "No id."}),
        json.dumps({"external_id": "a", "text": "Duplicate."}),
        "",
        json.dumps({"external_id": "g", "text": "Gold.", "gold": {"labels": ["meh"]}}),
        json.dumps({"external_id": "e", "text": "Exam.", "exam": True}),
        json.dumps(["a", "list"]),
        json.dumps({"external_id": "t", "text": ""}),
        json.dumps({"external_id": "ok-gold", "text": "Gold!", "gold": {"labels": ["pos"]}, "explanation": "Why."}),
        json.dumps({"external_id": "ok-exam", "text": "Exam!", "gold": {"labels": ["neg"]}, "exam": True}),
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = imports.import_items(pack.id, path, media_dir=None, now=NOW)
    assert (report.imported, report.gold, report.exam) == (3, 1, 1)
    found = problems(report)
    assert found == {
        2: "This line is not valid JSON.",
        3: "The external_id is missing.",
        4: "The external_id “a” is already in this pack.",
        6: "The gold answer is not valid: “meh” is not one of this pack's labels.",
        7: "Exam items need a gold answer.",
        8: "Each line must be a JSON object.",
        9: "The text is missing.",
    }
    items = {item.external_id: item for item in labeling_packs.pack_items(pack.id)}
    assert set(items) == {"a", "ok-gold", "ok-exam"}
    assert items["ok-gold"].is_gold and not items["ok-gold"].is_exam and items["ok-gold"].gold_explanation == "Why."
    assert items["ok-exam"].is_exam and items["ok-exam"].gold_answer == {"labels": ["neg"]}
    assert items["a"].labels_target == 2 and items["a"].payload == {"text": "Fine."}
    again = imports.import_items(pack.id, path, media_dir=None, now=NOW)  # importing twice adds nothing
    assert again.imported == 0 and db.session.scalar(select(func.count()).select_from(Item)) == 3


def test_rows_holding_a_nul_character_are_reported_not_stored(ctx, tmp_path):
    pack = make_pack(tmp_path, items=0)
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text("\n".join([
        json.dumps({"external_id": "a\x00b", "text": "Id with NUL."}),
        json.dumps({"external_id": "fine", "text": "Good."}),
        json.dumps({"external_id": "c", "text": "Text with \x00 NUL."}),
    ]) + "\n")
    csv_file = tmp_path / "items.csv"
    csv_file.write_text('external_id,text\nd,"x\x00y"\ne,Good too.\n')
    message = "This row contains the NUL character, which no field can hold."
    from_jsonl = imports.import_items(pack.id, jsonl, media_dir=None, now=NOW)
    from_csv = imports.import_items(pack.id, csv_file, media_dir=None, now=NOW)
    assert (from_jsonl.imported, problems(from_jsonl)) == (1, {1: message, 3: message})
    assert (from_csv.imported, problems(from_csv)) == (1, {2: message})
    assert {item.external_id for item in labeling_packs.pack_items(pack.id)} == {"fine", "e"}


def test_csv_lines_count_the_header_and_quoted_newlines(ctx, tmp_path):
    pack = make_pack(tmp_path, items=0)
    buffer = io.StringIO()
    buffer.write('external_id,text,gold,explanation\n')
    buffer.write('c1,"A passage\nover two lines",,\n')
    buffer.write('c2,Gold passage,"{""labels"": [""pos""]}",Because.\n')
    buffer.write('c3,Broken gold,{labels,\n')
    buffer.write('c4,Too,many,fields,here\n')
    buffer.write(',No id,,\n')
    path = tmp_path / "items.csv"
    path.write_text(buffer.getvalue())
    report = imports.import_items(pack.id, path, media_dir=None, now=NOW)
    assert report.imported == 2
    assert problems(report) == {
        5: "The gold answer is not valid: It starts with “{” but is not valid JSON.",
        6: "This row has more fields than the header.",
        7: "The external_id is missing.",
    }
    gold = next(item for item in labeling_packs.pack_items(pack.id) if item.external_id == "c2")
    assert gold.gold_answer == {"labels": ["pos"]}


def test_a_file_that_is_not_utf8_or_has_no_header_is_refused(ctx, tmp_path):
    pack = make_pack(tmp_path, items=0)
    path = tmp_path / "items.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    try:
        imports.import_items(pack.id, path, media_dir=None, now=NOW)
    except labeling_errors.LabelingError as error:
        assert "UTF-8" in str(error)
    else:
        raise AssertionError("a non-UTF-8 file was accepted")
    path.write_text("id,text\n1,x\n")
    try:
        imports.import_items(pack.id, path, media_dir=None, now=NOW)
    except labeling_errors.LabelingError as error:
        assert "external_id" in str(error)
    else:
        raise AssertionError("a CSV without external_id was accepted")


def test_media_is_checked_by_its_bytes(ctx, tmp_path, app):
    files = {
        "media/good.png": png_bytes(40, 30),
        "media/jpeg-in-disguise.png": png_bytes(fmt="JPEG"),
        "media/text.png": b"hello, I am not an image",
        "media/sound.wav": wav_bytes(0.05),
        "media/notes.txt": b"plain text",
        "media/truncated.png": png_bytes()[:60],
        "media/big.png": noisy_png(),
    }
    rows = [
        {"external_id": "good", "media": "media/good.png", "alt": "a red block", "gold": {"labels": ["cat"]}},
        {"external_id": "disguised", "media": "media/jpeg-in-disguise.png"},
        {"external_id": "text", "media": "media/text.png"},
        {"external_id": "sound", "media": "media/sound.wav"},
        {"external_id": "notes", "media": "media/notes.txt"},
        {"external_id": "missing", "media": "media/nowhere.png"},
        {"external_id": "escape", "media": "../../etc/passwd"},
        {"external_id": "truncated", "media": "media/truncated.png"},
        {"external_id": "same-file", "media": "media/good.png"},
        {"external_id": "big", "media": "media/big.png"},
        {"external_id": "no-media"},
    ]
    app.config["MAX_MEDIA_BYTES"] = 1500
    try:
        pack, report = make_media_pack(tmp_path, "image_classification", labels=("cat", "dog"), rows=rows, files=files)
    finally:
        app.config["MAX_MEDIA_BYTES"] = 10 * 1024 * 1024
    assert report.imported == 2 and report.media_stored == 1
    found = problems(report)
    assert found[2] == "media/jpeg-in-disguise.png claims to be PNG but its content is JPEG."
    assert found[3] == "media/text.png is not really a PNG file."
    assert found[4] == "media/sound.wav is audio, but this pack needs images."
    assert "not a file type we accept" in found[5]
    assert found[6] == "The media file media/nowhere.png is missing."
    assert "relative to the pack folder" in found[7]
    assert found[8] == "media/truncated.png is a damaged image that cannot be read."
    assert found[10].startswith("media/big.png is too large (") and "the limit is 2 kB" in found[10]
    assert found[11] == "The media file is missing."
    items = {item.external_id: item for item in labeling_packs.pack_items(pack.id)}
    assert set(items) == {"good", "same-file"} and items["good"].media_id == items["same-file"].media_id
    media = db.session.get(Media, items["good"].media_id)
    assert (media.kind, media.content_type, media.width, media.height) == ("image", "image/png", 40, 30)
    assert access.media_path(media).read_bytes() == files["media/good.png"]
    # Nothing half-imported: no media row without its item.
    assert db.session.scalar(select(func.count()).select_from(Media)) == 1


def test_audio_media_is_measured(ctx, tmp_path):
    pack, report = make_media_pack(tmp_path, "audio_transcription", labels=(), files={"media/clip.wav": wav_bytes(1.5)})
    assert report.imported == 1
    media = db.session.get(Media, labeling_packs.pack_items(pack.id)[0].media_id)
    assert (media.kind, media.content_type, media.duration_ms) == ("audio", "audio/wav", 1500)


def test_pack_folder_and_cli(app, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "pack.json").write_text(json.dumps({
        "campaign": {"name": "Folder campaign", "kind": "community"},
        "pack": {"name": "Folder pack", "slug": "folder-pack", "task_type": "text_cleaning", "reward_points": 0, "revenue_shares": 2},
    }))
    (folder / "items.jsonl").write_text(json.dumps({"external_id": "1", "text": "teh cat"}) + "\n" + "oops\n")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["labeling", "import-folder", str(folder)])
    assert result.exit_code == 0, result.output
    assert "pack folder-pack created" in result.output and "imported 1 item" in result.output
    assert "line 2: This line is not valid JSON." in result.output
    more = tmp_path / "more.csv"
    more.write_text("external_id,text\n2,second passage\n")
    result = runner.invoke(args=["labeling", "import", "folder-pack", str(more)])
    assert result.exit_code == 0 and "imported 1 item" in result.output
    result = runner.invoke(args=["labeling", "import", "no-such-pack", str(more)])
    assert result.exit_code != 0 and "no pack" in result.output
    result = runner.invoke(args=["labeling", "import-folder", str(folder)])  # the slug is taken now
    assert result.exit_code != 0 and "already uses the slug" in result.output


def test_upload_from_the_browser_reports_bad_lines(app, make_member, tmp_path):
    with app.test_request_context():
        pack, _report = make_media_pack(tmp_path, "bounding_boxes", labels=("cell", "nucleus"))
        slug = pack.slug
    mod = make_member(role="moderator")
    items = "\n".join([
        json.dumps({"external_id": "u1", "media": "images/slide 1.png", "gold": {"boxes": [{"x": 1, "y": 1, "w": 5, "h": 5, "label": "cell"}]}}),
        json.dumps({"external_id": "u2", "media": "images/fake.png"}),
        json.dumps({"external_id": "u3", "media": "images/slide 1.png", "gold": {"boxes": [{"x": 60, "y": 1, "w": 50, "h": 5, "label": "cell"}]}}),
    ])
    data = {
        "csrf_token": mod.csrf(),
        "items": (io.BytesIO(items.encode()), "items.jsonl"),
        "media": [(io.BytesIO(png_bytes(64, 48)), "slide 1.png"), (io.BytesIO(b"GIF89a not really"), "fake.png")],
    }
    response = mod.client.post(f"/manage/packs/{slug}/items", data=data, content_type="multipart/form-data")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "1 item imported" in body and "fake.png claims to be PNG but its content is GIF." in body
    assert "Box 1 goes outside the image." in body
    bad = mod.client.post(f"/manage/packs/{slug}/items", data={"csrf_token": mod.csrf(), "items": (io.BytesIO(b"x"), "items.txt")},
                          content_type="multipart/form-data")
    assert bad.status_code == 422 and "must be .jsonl or .csv" in bad.get_data(as_text=True)
    clean = mod.client.post(f"/manage/packs/{slug}/items",
                            data={"csrf_token": mod.csrf(), "items": (io.BytesIO(b'{"external_id": "u9", "media": "a.png"}\n'), "more.jsonl"),
                                  "media": [(io.BytesIO(png_bytes()), "a.png")]},
                            content_type="multipart/form-data")
    assert clean.status_code == 303
    empty = mod.client.post(f"/manage/packs/{slug}/items", data={"csrf_token": mod.csrf(), "items": (io.BytesIO(b"external_id,media\n"), "none.csv")},
                            content_type="multipart/form-data", follow_redirects=True)
    assert "The file holds no items: nothing was imported." in empty.get_data(as_text=True)


def test_demo_packs_cover_every_task_type_and_import_once(app):
    from sapien.labeling.models import TASK_TYPES, TaskPack

    runner = app.test_cli_runner()
    first = runner.invoke(args=["labeling", "demo"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        packs = list(db.session.scalars(select(TaskPack)))
        assert {pack.task_type for pack in packs} >= set(TASK_TYPES) - {"audio_transcription"}
        counts = labeling_packs.pack_counts()
        assert all(counts[pack.id].items > 0 for pack in packs)
        assert any(counts[pack.id].gold > 0 for pack in packs)
    second = runner.invoke(args=["labeling", "demo"])
    assert second.exit_code == 0 and "Demo packs already present." in second.output


def test_a_photo_is_measured_as_browsers_show_it(ctx, tmp_path):
    """A phone photo stored sideways with an EXIF orientation is shown upright: boxes are drawn on that."""
    from PIL import Image

    from sapien.labeling.media import inspect

    def jpeg(orientation: int | None) -> bytes:
        image = Image.new("RGB", (640, 480), (200, 100, 50))
        exif = image.getexif()
        if orientation:
            exif[0x0112] = orientation
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", exif=exif)
        return buffer.getvalue()

    upright = inspect("upright.jpg", jpeg(None), "image")
    assert (upright.width, upright.height) == (640, 480)
    turned = inspect("turned.jpg", jpeg(6), "image")  # "rotate 90° clockwise to show"
    assert (turned.width, turned.height) == (480, 640)
    assert inspect("flipped.jpg", jpeg(3), "image").width == 640  # upside down keeps its sides


def test_a_giant_image_is_called_too_large_with_the_limit(ctx):
    """A 20000 × 20000 PNG (a few bytes claiming 400 million pixels) trips Pillow's own bomb guard before
    ours: either way the message says it is too large and what the limit is, not that it is damaged."""
    import struct
    import zlib

    import pytest

    from sapien.labeling.media import MediaRejected, inspect

    def png_claiming(width: int, height: int) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")

    for width, height in ((20_000, 20_000), (8_000, 6_000)):
        with pytest.raises(MediaRejected) as refused:
            inspect("huge.png", png_claiming(width, height), "image")
        assert str(refused.value.message) == "huge.png is too large an image: at most 40 million pixels are allowed."


def test_long_external_ids_import_and_stay_unique_per_pack(ctx, tmp_path):
    # Real ids (a name plus a URL) run past 128 characters; two that differ only at the end are two items.
    pack = make_pack(tmp_path, items=0)
    stem = "Fort Totten-http://www.freebase.com/view/en/" + "x" * 1900
    long_ids = [stem + "a", stem + "b", "é" * 2048]  # the last is 4,096 bytes of UTF-8: more than a B-tree entry holds
    lines = [json.dumps({"external_id": external_id, "text": "Some text."}) for external_id in long_ids]
    lines += [json.dumps({"external_id": stem + "a", "text": "Again."}), json.dumps({"external_id": "y" * 2049, "text": "Too long."})]
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = imports.import_items(pack.id, path, media_dir=None, now=NOW)
    assert report.imported == 3
    assert problems(report) == {4: f"The external_id “{(stem + 'a')[:40]}” is already in this pack.", 5: "The external_id is longer than 2,048 characters."}
    stored = set(db.session.scalars(select(Item.external_id).where(Item.pack_id == pack.id)))
    assert stored == set(long_ids)
    again = tmp_path / "again.jsonl"
    again.write_text(json.dumps({"external_id": "é" * 2048, "text": "Same id, later file."}) + "\n", encoding="utf-8")
    assert problems(imports.import_items(pack.id, again, media_dir=None, now=NOW)) == {1: f"The external_id “{'é' * 40}” is already in this pack."}
