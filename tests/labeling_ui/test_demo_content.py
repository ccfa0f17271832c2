"""The demo packs: valid import folders with real, checkable known answers, the same bytes on every run."""

from __future__ import annotations

import json
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from sapien.labeling import demo_texts
from sapien.labeling.models import DIFFICULTIES, TASK_TYPES, TaskPack
from sapien.labeling.seeding import write_demo_packs

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
PACK_COLUMNS = {column.name for column in TaskPack.__table__.columns}
EXPECTED = {
    "product-review-sentiment": "text_classification",
    "news-headline-topics": "text_classification",
    "fix-the-typos": "text_cleaning",
    "handwritten-digits": "image_classification",
    "count-the-coins": "bounding_boxes",
    "medical-cell-nuclei": "bounding_boxes",
    "transcribe-short-sentences": "audio_transcription",
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo-packs")
    write_demo_packs(out)
    return out


def load(folder: Path) -> tuple[dict, list[dict]]:
    spec = json.loads((folder / "pack.json").read_text("utf-8"))
    rows = [json.loads(line) for line in (folder / "items.jsonl").read_text("utf-8").splitlines()]
    return spec, rows


def test_every_task_type_has_a_pack_with_instructions_examples_and_a_campaign(demo_dir):
    folders = sorted(p.name for p in demo_dir.iterdir())
    assert folders == sorted(EXPECTED)
    assert set(EXPECTED.values()) == set(TASK_TYPES)
    kinds = set()
    for slug, task_type in EXPECTED.items():
        spec, rows = load(demo_dir / slug)
        pack, campaign = spec["pack"], spec["campaign"]
        assert pack["slug"] == slug and pack["task_type"] == task_type
        assert set(pack) <= PACK_COLUMNS, set(pack) - PACK_COLUMNS
        assert pack["difficulty"] in DIFFICULTIES
        assert len(pack["instructions"]) > 150
        assert 2 <= len(pack["examples"]) <= 3
        assert all(set(example) == {"input", "answer", "why"} and all(example.values()) for example in pack["examples"])
        assert campaign["name"] and campaign["kind"] in ("enterprise", "dual", "community")
        kinds.add(campaign["kind"])
        if campaign["kind"] == "dual":
            assert campaign["partner_token"] and pack["partner_reward"] > 0
        if campaign["kind"] == "community":
            assert pack["reward_points"] == 0 and pack["revenue_shares"] > 0
        ids = [row["external_id"] for row in rows]
        assert len(ids) == len(set(ids)) and len(rows) >= 20
        golds = [row for row in rows if "gold" in row and not row.get("exam")]
        assert golds, slug
        assert all(row.get("explanation") for row in rows if "gold" in row), slug
        assert all("gold" in row for row in rows if row.get("exam"))
        # Gold items are a share, not the whole pack: most items are real work.
        assert len(golds) < len(rows) / 2
    assert kinds == {"enterprise", "dual", "community"}


def test_gold_answers_have_the_canonical_shape_and_fit_the_pack(demo_dir):
    for slug, task_type in EXPECTED.items():
        spec, rows = load(demo_dir / slug)
        options = spec["pack"].get("label_options", [])
        for row in rows:
            media = demo_dir / slug / row["media"] if "media" in row else None
            if task_type in ("text_classification", "text_cleaning"):
                assert isinstance(row["text"], str) and row["text"].strip() and media is None
            else:
                assert media is not None and media.is_file() and row["alt"]
            gold = row.get("gold")
            if gold is None:
                continue
            if task_type in ("text_classification", "image_classification"):
                assert set(gold) == {"labels"}
                labels = gold["labels"]
                assert labels == sorted(set(labels)) and set(labels) <= set(options)
                assert len(labels) >= 1 if spec["pack"].get("multi_label") else len(labels) == 1
            elif task_type in ("text_cleaning", "audio_transcription"):
                assert set(gold) == {"text"} and gold["text"] == gold["text"].strip() and gold["text"]
            else:
                width, height = Image.open(media).size
                assert set(gold) == {"boxes"} and len(gold["boxes"]) <= 100
                for box in gold["boxes"]:
                    assert set(box) == {"x", "y", "w", "h", "label"} and box["label"] in options
                    assert all(isinstance(box[key], int) for key in "xywh")
                    assert box["w"] > 0 and box["h"] > 0 and box["x"] >= 0 and box["y"] >= 0
                    assert box["x"] + box["w"] <= width and box["y"] + box["h"] <= height


def test_multi_label_headlines_use_several_topics(demo_dir):
    spec, rows = load(demo_dir / "news-headline-topics")
    assert spec["pack"]["multi_label"] is True
    assert any(len(row["gold"]["labels"]) == 2 for row in rows if "gold" in row)
    assert set(spec["pack"]["label_options"]) == {"politics", "sport", "science", "business", "health", "technology"}


def test_sentiment_pack_has_exam_items_and_about_fifteen_percent_gold(demo_dir):
    _spec, rows = load(demo_dir / "product-review-sentiment")
    exam = [row for row in rows if row.get("exam")]
    work = [row for row in rows if not row.get("exam")]
    assert len(exam) == 5
    assert 0.1 <= sum("gold" in row for row in work) / len(work) <= 0.2
    assert {row["gold"]["labels"][0] for row in work if "gold" in row} == {"positive", "negative", "neutral"}


def test_typo_passages_need_fixing_and_their_gold_is_the_clean_text(demo_dir):
    _spec, rows = load(demo_dir / "fix-the-typos")
    assert [row["text"] for row in rows] != demo_texts.CLEAN_PASSAGES
    for row, clean in zip(rows, demo_texts.CLEAN_PASSAGES, strict=True):
        assert row["text"] != clean
        assert row["text"].split() != clean.split() or "  " in row["text"]
        if "gold" in row:
            assert row["gold"] == {"text": clean}


def test_digit_labels_come_from_the_dataset(demo_dir):
    from sklearn.datasets import load_digits

    targets = load_digits().target
    _spec, rows = load(demo_dir / "handwritten-digits")
    for row in rows:
        index = int(row["external_id"].split("-")[1])
        image = Image.open(demo_dir / "handwritten-digits" / row["media"])
        assert image.size == (112, 112)
        if "gold" in row:
            assert row["gold"] == {"labels": [str(targets[index])]}
        # The alt text never gives the answer away.
        assert not any(str(digit) in row["alt"].replace("8 by 8", "") for digit in range(10))


def test_coin_boxes_find_every_coin_of_the_photo(demo_dir):
    _spec, rows = load(demo_dir / "count-the-coins")
    full = next(row for row in rows if row["external_id"] == "coins-full")
    assert len(full["gold"]["boxes"]) == 24  # the sample photo shows 24 coins
    image = Image.open(demo_dir / "count-the-coins" / full["media"]).convert("L")
    for box in full["gold"]["boxes"]:
        inside = image.crop((box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]))
        # A coin is bright metal on a dark cloth; a roughly square box hugs a round coin.
        assert sum(inside.getdata()) / (box["w"] * box["h"]) > 90
        assert 0.7 < box["w"] / box["h"] < 1.4


def test_nuclei_pack_is_expert_dual_reward_and_gated_by_an_exam(demo_dir):
    spec, rows = load(demo_dir / "medical-cell-nuclei")
    pack = spec["pack"]
    assert pack["difficulty"] == "expert" and pack["exam_required"] is True
    assert pack["min_level"] == 3 and pack["min_reputation"] == 600
    assert spec["campaign"]["partner_token"] == "BIO"
    exam = [row for row in rows if row.get("exam")]
    assert len(exam) >= pack["exam_size"]
    for row in (r for r in rows if "gold" in r):
        image = Image.open(demo_dir / "medical-cell-nuclei" / row["media"]).convert("RGB")
        assert len(row["gold"]["boxes"]) >= 3
        for box in row["gold"]["boxes"]:
            crop = image.crop((box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]))
            pixels = sorted(crop.getdata(), key=sum)
            darkest = pixels[: max(1, len(pixels) * 3 // 10)]  # the nucleus, not the pale tissue around it
            red, blue = (sum(p[0] for p in darkest), sum(p[2] for p in darkest))
            assert blue > red, ("a nucleus box should hold hematoxylin blue", row["external_id"], box)


def test_transcription_audio_is_real_speech_of_the_known_sentence(demo_dir):
    _spec, rows = load(demo_dir / "transcribe-short-sentences")
    assert len(rows) == len(demo_texts.SPOKEN_SENTENCES)
    for row, sentence in zip(rows, demo_texts.SPOKEN_SENTENCES, strict=True):
        path = demo_dir / "transcribe-short-sentences" / row["media"]
        assert path.read_bytes()[:4] == b"RIFF"
        with wave.open(str(path), "rb") as audio:
            seconds = audio.getnframes() / audio.getframerate()
        assert 0.8 < seconds < 10
        if "gold" in row:
            assert row["gold"] == {"text": sentence}


def test_two_runs_write_the_same_bytes(demo_dir, tmp_path):
    again = write_demo_packs(tmp_path)
    assert [p.name for p in again] == list(EXPECTED)
    for folder in again:
        for name in ("pack.json", "items.jsonl"):
            assert (folder / name).read_bytes() == (demo_dir / folder.name / name).read_bytes(), (folder.name, name)
        for media in sorted((folder / "media").glob("*")) if (folder / "media").exists() else []:
            assert media.read_bytes() == (demo_dir / folder.name / "media" / media.name).read_bytes()


def test_every_demo_folder_imports_without_a_problem(app_ctx, demo_dir):
    from sapien.labeling import answers, imports, packs

    for slug, task_type in EXPECTED.items():
        _spec, rows = load(demo_dir / slug)
        pack, report = imports.import_pack_folder(demo_dir / slug, actor_id=None, now=NOW)
        assert report.problems == [], (slug, report.problems[:3])
        assert pack.task_type == task_type and report.imported == len(rows)
        assert report.exam == sum(1 for row in rows if row.get("exam"))
        # Every known answer passes the same validation members' answers go through.
        for item in packs.pack_items(pack.id):
            if item.gold_answer is not None:
                assert answers.validate_answer(pack, item, item.gold_answer) == item.gold_answer
