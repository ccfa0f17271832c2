"""Demo task packs made offline from real data with known answers, written in the import format
(a folder per pack: pack.json + items.jsonl + media files; see `labeling.service.import_pack_folder`).

- written text: product reviews, news headlines, passages with injected typing/OCR errors (`demo_texts`);
- scikit-learn's handwritten digits, rendered to PNG;
- scikit-image's sample photo of coins and its immunohistochemistry slide, with boxes found by
  thresholding, labelling and `regionprops` as the known answers, cut into tiles;
- sentences spoken by Debian's espeak-ng.

Everything is deterministic (fixed seeds, sorted outputs): two runs write the same bytes.
"""

from __future__ import annotations

import io
import json
import logging
import random
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from sapien.labeling import demo_texts

log = logging.getLogger(__name__)

SEED = 20260412


@dataclass
class DemoPack:
    slug: str
    campaign: dict
    pack: dict
    rows: list[dict] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)  # relative path → file contents


def write_demo_packs(out_dir: Path) -> list[Path]:
    """Write one import folder per demo pack under `out_dir` and return the folders, in a stable order.

    The transcription pack needs the `espeak-ng` program; without it that pack is left out (with a warning).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    builders = [sentiment_pack, headlines_pack, typos_pack, digits_pack, coins_pack, nuclei_pack, speech_pack]
    folders = []
    for build in builders:
        demo = build()
        if demo is None:
            continue
        folders.append(_write(out_dir / demo.slug, demo))
    return folders


def _write(folder: Path, demo: DemoPack) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    pack = {"campaign": demo.campaign, "pack": {"slug": demo.slug, **demo.pack}}
    (folder / "pack.json").write_text(json.dumps(pack, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [json.dumps(row, ensure_ascii=False, sort_keys=True) for row in demo.rows]
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for relative, content in sorted(demo.media.items()):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


def _row(external_id: str, *, text: str | None = None, media: str | None = None, alt: str | None = None,
         gold: dict | None = None, explanation: str = "", exam: bool = False) -> dict:
    row: dict = {"external_id": external_id}
    if text is not None:
        row["text"] = text
    if media is not None:
        row["media"] = media
    if alt is not None:
        row["alt"] = alt
    if gold is not None:
        row["gold"] = gold
        if explanation:
            row["explanation"] = explanation
    if exam:
        row["exam"] = True
    return row


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# ---- text classification ------------------------------------------------------------------------
def sentiment_pack() -> DemoPack:
    rows = []
    for number, (review, label, guideline) in enumerate(demo_texts.REVIEWS, start=1):
        gold = {"labels": [label]} if guideline else None
        rows.append(_row(f"review-{number:03d}", text=review, gold=gold, explanation=guideline))
    for number, (review, label, guideline) in enumerate(demo_texts.REVIEW_EXAM, start=1):
        rows.append(_row(f"review-exam-{number}", text=review, gold={"labels": [label]}, explanation=guideline, exam=True))
    return DemoPack(
        slug="product-review-sentiment",
        campaign={
            "name": "Northwind customer voice",
            "kind": "enterprise",
            "description": "Northwind Retail wants to know how shoppers feel about what they bought.",
            "client_name": "Northwind Retail",
            "partner_token": "",
        },
        pack={
            "name": "Sentiment of product reviews",
            "task_type": "text_classification",
            "multi_label": False,
            "label_options": ["positive", "negative", "neutral"],
            "instructions": (
                "Read the customer review and choose how the writer feels about the product they bought.\n\n"
                "positive: the writer is pleased — praise, recommendations, high ratings.\n"
                "negative: the writer is unhappy — faults, complaints, returns, warnings to others.\n"
                "neutral: facts without a feeling (size, contents, delivery dates), or the writer cannot judge yet.\n\n"
                "Judge the product experience, not the writing style. If one clear feeling dominates, pick it."
            ),
            "examples": [
                {"input": "The handle snapped off after a week.", "answer": "negative",
                 "why": "A fault after little use is a complaint."},
                {"input": "Arrived on Tuesday in a brown box.", "answer": "neutral",
                 "why": "Only facts about the delivery; no opinion of the product."},
                {"input": "Sturdy, quiet and my kids love it.", "answer": "positive",
                 "why": "Praise for the product and its users are happy."},
            ],
            "difficulty": "beginner",
            "reward_points": 10,
            "reward_xp": 10,
            "labels_per_item": 3,
            "max_labels_per_item": 5,
            "gold_rate_percent": 15,
            "review_rate_percent": 10,
            "daily_cap": 200,
            "estimated_seconds": 10,
            "exam_required": False,
            "exam_size": 5,
            "exam_pass_percent": 80,
        },
        rows=rows,
    )


def headlines_pack() -> DemoPack:
    rows = []
    for number, (headline, topics, guideline) in enumerate(demo_texts.HEADLINES, start=1):
        gold = {"labels": sorted(topics)} if guideline else None
        rows.append(_row(f"headline-{number:03d}", text=headline, gold=gold, explanation=guideline))
    return DemoPack(
        slug="news-headline-topics",
        campaign={
            "name": "Open news topics",
            "kind": "community",
            "description": "A community-built, openly licensed dataset of news topics. Contributors earn shares "
                           "of the revenue when the dataset is licensed.",
            "client_name": "",
            "partner_token": "",
        },
        pack={
            "name": "Topics of news headlines",
            "task_type": "text_classification",
            "multi_label": True,
            "label_options": list(demo_texts.NEWS_TOPICS),
            "instructions": (
                "Tick every topic the headline is about. Most headlines have one topic; many have two.\n\n"
                "politics: governments, elections, laws, ministers, councils.\n"
                "sport: games, athletes, clubs, tournaments.\n"
                "science: research, discoveries, studies, space, nature.\n"
                "business: companies, markets, prices, jobs, trade.\n"
                "health: illness, medicine, hospitals, fitness, food safety.\n"
                "technology: computers, phones, the internet, AI, gadgets, engineering.\n\n"
                "Only tick a topic the headline itself supports; do not guess what the article might add."
            ),
            "examples": [
                {"input": "Health minister promises shorter waiting lists", "answer": "health, politics",
                 "why": "A minister's promise is politics; waiting lists are health."},
                {"input": "Goalkeeper saves three penalties in shoot-out", "answer": "sport",
                 "why": "Only sport: nothing about money, health or politics."},
                {"input": "Phone maker's profits fall as sales slow", "answer": "business, technology",
                 "why": "Profits and sales are business; the company makes technology."},
            ],
            "difficulty": "intermediate",
            "reward_points": 0,
            "reward_xp": 12,
            "revenue_shares": 3,
            "labels_per_item": 3,
            "max_labels_per_item": 5,
            "gold_rate_percent": 15,
            "review_rate_percent": 10,
            "daily_cap": 150,
            "estimated_seconds": 15,
        },
        rows=rows,
    )


# ---- text cleaning --------------------------------------------------------------------------------
_OCR_SWAPS = [("m", "rn"), ("l", "1"), ("e", "c"), ("o", "0"), ("cl", "d"), ("h", "b")]


def _corrupt(clean: str, rng: random.Random) -> tuple[str, list[str]]:
    """Inject 2–3 typing or OCR errors into distinct words; returns the damaged text and what was done."""
    words = clean.split(" ")
    candidates = [i for i, word in enumerate(words) if sum(ch.isalpha() for ch in word) >= 4]
    chosen = sorted(rng.sample(candidates, k=min(len(candidates), rng.choice([2, 3]))))
    notes = []
    for index in chosen:
        word = words[index]
        letters = [i for i, ch in enumerate(word) if ch.isalpha()]
        if len(letters) < 4:  # already merged into the previous word by a "join"
            continue
        last = index == len(words) - 1
        kind = rng.choice(["swap", "drop", "double", "ocr"] if last else ["swap", "drop", "double", "ocr", "space", "join"])
        if kind == "swap":
            i = rng.choice(letters[:-1])
            if word[i] == word[i + 1] or not word[i + 1].isalpha():
                kind = "drop"
            else:
                words[index] = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if kind == "drop":
            i = rng.choice(letters[1:])
            words[index] = word[:i] + word[i + 1:]
        elif kind == "double":
            i = rng.choice(letters)
            words[index] = word[:i] + word[i] + word[i:]
        elif kind == "ocr":
            swaps = [(a, b) for a, b in _OCR_SWAPS if a in word[1:]]
            if swaps:
                a, b = rng.choice(swaps)
                at = word.index(a, 1)
                words[index] = word[:at] + b + word[at + len(a):]
            else:
                kind = "double"
                words[index] = word + word[-1] if word[-1].isalpha() else word[0] + word
        elif kind == "space":
            words[index] = word + " "  # joined with " " below: a double space after the word
        elif kind == "join":
            words[index] = word + words[index + 1]
            words[index + 1] = ""
        if kind == "space":
            notes.append(f"a double space after '{word}'")
        elif kind == "join":
            notes.append(f"a missing space after '{word}'")
        else:
            notes.append(f"'{words[index]}' → '{word}'")
    damaged = " ".join(w for w in words if w != "")
    return damaged, notes


def typos_pack() -> DemoPack:
    rng = random.Random(SEED + 3)
    rows = []
    for number, clean in enumerate(demo_texts.CLEAN_PASSAGES, start=1):
        damaged, notes = _corrupt(clean, rng)
        if damaged == clean:  # defensive: a passage must really need fixing
            damaged = clean.replace(" ", "  ", 1)
            notes = ["a double space"]
        is_gold = number % 3 == 1
        explanation = "The corrections: " + "; ".join(notes) + ". Everything else was already right." if is_gold else ""
        rows.append(_row(f"passage-{number:03d}", text=damaged, gold={"text": clean} if is_gold else None,
                         explanation=explanation))
    return DemoPack(
        slug="fix-the-typos",
        campaign={
            "name": "Clean text for reading assistants",
            "kind": "enterprise",
            "description": "Scanned and typed passages cleaned up for a text-to-speech reading assistant.",
            "client_name": "Lumen Reading",
            "partner_token": "",
        },
        pack={
            "name": "Fix the typos",
            "task_type": "text_cleaning",
            "label_options": [],
            "instructions": (
                "Each passage was typed in a hurry or scanned with OCR. Correct it so it reads as the author meant.\n\n"
                "Fix: misspelled or swapped letters, letters the scanner misread (rn for m, 1 for l, 0 for o), "
                "missing or doubled spaces, words run together.\n"
                "Do not: rewrite the style, change the wording, add or remove punctuation that is correct, "
                "or switch between British and American spelling.\n\n"
                "The preview under the box shows your changes; 'Reset to original' starts again."
            ),
            "examples": [
                {"input": "The shop opens at nine  in the rnorning.", "answer": "The shop opens at nine in the morning.",
                 "why": "Remove the double space; 'rn' was a misread 'm'."},
                {"input": "Plaese bring your ticket.", "answer": "Please bring your ticket.",
                 "why": "Two swapped letters."},
                {"input": "We walked alongthe river.", "answer": "We walked along the river.",
                 "why": "A missing space ran two words together."},
            ],
            "difficulty": "intermediate",
            "reward_points": 15,
            "reward_xp": 15,
            "labels_per_item": 2,
            "max_labels_per_item": 4,
            "gold_rate_percent": 20,
            "review_rate_percent": 15,
            "daily_cap": 100,
            "estimated_seconds": 40,
        },
        rows=rows,
    )


# ---- image classification -------------------------------------------------------------------------
def digits_pack(count: int = 120) -> DemoPack:
    from sklearn.datasets import load_digits  # scikit-learn loads slowly; only demo seeding needs it

    digits = load_digits()
    rng = random.Random(SEED + 4)
    indices = sorted(rng.sample(range(len(digits.target)), count))
    rows, media = [], {}
    alt = "A handwritten digit scanned at 8 by 8 pixels, shown enlarged."
    for position, index in enumerate(indices):
        pixels = digits.images[index]  # 0 (paper) … 16 (ink)
        grey = (255 - np.rint(pixels * 255 / 16)).astype(np.uint8)
        image = Image.fromarray(grey, mode="L").resize((112, 112), Image.Resampling.NEAREST)
        path = f"media/digit-{index:04d}.png"
        media[path] = _png(image)
        label = str(int(digits.target[index]))
        is_gold = position % 7 == 0
        rows.append(_row(
            f"digit-{index:04d}", media=path, alt=alt,
            gold={"labels": [label]} if is_gold else None,
            explanation=f"This scan is a {label}: the digit its writer was asked to draw." if is_gold else "",
        ))
    return DemoPack(
        slug="handwritten-digits",
        campaign={
            "name": "Postcode reader training set",
            "kind": "enterprise",
            "description": "Labelled handwritten digits for a postal sorting machine's reader.",
            "client_name": "Acme Logistics",
            "partner_token": "",
        },
        pack={
            "name": "Handwritten digits",
            "task_type": "image_classification",
            "multi_label": False,
            "label_options": [str(d) for d in range(10)],
            "instructions": (
                "Each picture is a single handwritten digit from a low-resolution scan (8 × 8 pixels, enlarged). "
                "Choose the digit you see: click it or press its key (0–9), then Enter.\n\n"
                "Look at the overall shape rather than single pixels: a 1 is a narrow stroke, a 7 has a bar on top "
                "and no closed loop, a 9 has its loop at the top, a 6 at the bottom, an 8 has two loops."
            ),
            "examples": [
                {"input": "A closed loop at the top with a straight tail going down", "answer": "9",
                 "why": "The loop is at the top; a 6 would have it at the bottom."},
                {"input": "A horizontal bar on top and a diagonal stroke, no loop", "answer": "7",
                 "why": "The top bar with no closed loop is a 7."},
                {"input": "Two stacked loops", "answer": "8", "why": "Only 8 has two closed loops."},
            ],
            "difficulty": "beginner",
            "reward_points": 8,
            "reward_xp": 8,
            "labels_per_item": 3,
            "max_labels_per_item": 5,
            "gold_rate_percent": 15,
            "review_rate_percent": 5,
            "daily_cap": 300,
            "estimated_seconds": 5,
        },
        rows=rows,
        media=media,
    )


# ---- bounding boxes ---------------------------------------------------------------------------------
Box = tuple[int, int, int, int]  # x, y, w, h in image pixels


def _boxes_from_regions(labels: np.ndarray, min_area: int, max_area: int, keep=None) -> list[Box]:
    from skimage import measure  # scikit-image and scipy load slowly; only demo seeding needs them

    boxes = []
    for region in measure.regionprops(labels):
        if not (min_area <= region.area <= max_area):
            continue
        if keep is not None and not keep(region):
            continue
        top, left, bottom, right = region.bbox
        boxes.append((int(left), int(top), int(right - left), int(bottom - top)))
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def coin_boxes() -> tuple[np.ndarray, list[Box]]:
    """The coins photo and one box per coin: the watershed of the Sobel elevation map from dark (background)
    and bright (coin) markers, hole filling and connected components — scikit-image's classic recipe, which
    copes with the uneven lighting a global threshold trips on."""
    # scikit-image and scipy load slowly; only demo seeding needs them.
    from scipy import ndimage
    from skimage import data, filters, measure, morphology, segmentation

    image = data.coins()
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[image < 30] = 1
    markers[image > 150] = 2
    coins = segmentation.watershed(filters.sobel(image), markers) == 2
    coins = ndimage.binary_fill_holes(coins)
    coins = morphology.opening(coins, morphology.disk(2))
    return image, _boxes_from_regions(measure.label(coins), min_area=300, max_area=6000)


def nuclei_boxes() -> tuple[np.ndarray, list[Box], np.ndarray]:
    """The immunohistochemistry slide and one box per nucleus in the stroma.

    Hematoxylin (rgb2hed) marks nuclei; Otsu threshold + opening + watershed on the distance transform splits
    touching nuclei. Nuclei inside the DAB-stained (brown) glands are too crowded to box reliably, so the known
    answers cover the stroma only, and tiles are cut from the stroma. Returns the image, the boxes and the
    brown mask."""
    # scikit-image and scipy load slowly; only demo seeding needs them.
    from scipy import ndimage
    from skimage import color, data, feature, filters, measure, morphology, segmentation

    image = data.immunohistochemistry()
    hed = color.rgb2hed(image)
    hematoxylin = filters.gaussian(hed[..., 0], sigma=1.5)
    mask = hematoxylin > filters.threshold_otsu(hematoxylin)
    mask = morphology.opening(mask, morphology.disk(2))
    mask = ndimage.binary_fill_holes(mask)
    labels = measure.label(mask)
    distance = ndimage.distance_transform_edt(mask)
    peaks = feature.peak_local_max(distance, min_distance=6, labels=labels)
    markers = np.zeros_like(labels)
    for number, (row, col) in enumerate(sorted(map(tuple, peaks)), start=1):
        markers[row, col] = number
    nuclei = segmentation.watershed(-distance, markers, mask=mask)
    dab = filters.gaussian(hed[..., 2], sigma=10)
    brown = dab > filters.threshold_otsu(dab)

    def is_stromal_nucleus(region) -> bool:
        row, col = region.centroid
        if brown[int(row), int(col)]:
            return False
        # Hematoxylin is blue-purple: when the darkest part of the box is redder than blue, it is DAB stain
        # (a gland's edge) or debris, not a nucleus one can box with confidence.
        pixels = image[region.coords[:, 0], region.coords[:, 1]].astype(float)
        top, left, bottom, right = region.bbox
        box = image[top:bottom, left:right].reshape(-1, 3).astype(float)
        darkest = box[box.mean(axis=1) <= np.percentile(box.mean(axis=1), 30)]
        return pixels[:, 2].mean() > pixels[:, 0].mean() + 4 and darkest[:, 2].mean() > darkest[:, 0].mean()

    return image, _boxes_from_regions(nuclei, min_area=60, max_area=1200, keep=is_stromal_nucleus), brown


Window = tuple[int, int, int, int]  # left, top, right, bottom (exclusive)


def tile_boxes(boxes: Iterable[Box], window: Window) -> tuple[list[Box], bool]:
    """The boxes seen through a window, clipped and moved to its coordinates, and whether the window is clean:
    every object is almost wholly inside (≥ 90% of it) or outside (a sliver of ≤ 10% at most), so the known
    answer is unambiguous."""
    left, top, right, bottom = window
    inside, clean = [], True
    for x, y, w, h in boxes:
        x1, y1 = max(x, left), max(y, top)
        x2, y2 = min(x + w, right), min(y + h, bottom)
        if x2 <= x1 or y2 <= y1:
            continue
        share = (x2 - x1) * (y2 - y1) / (w * h)
        if share >= 0.9:
            inside.append((x1 - left, y1 - top, x2 - x1, y2 - y1))
        elif share > 0.1:
            clean = False
    return sorted(inside, key=lambda b: (b[1], b[0])), clean


def _grow(boxes: list[Box], window: Window, max_side: int) -> Window | None:
    """Widen a window until it cuts no object (each cut object is taken in whole); None if it gets too big."""
    left, top, right, bottom = window
    for _ in range(50):
        changed = False
        for x, y, w, h in boxes:
            x1, y1, x2, y2 = max(x, left), max(y, top), min(x + w, right), min(y + h, bottom)
            if x2 <= x1 or y2 <= y1:
                continue
            share = (x2 - x1) * (y2 - y1) / (w * h)
            if 0.1 < share < 1:
                left, top, right, bottom = min(left, x), min(top, y), max(right, x + w), max(bottom, y + h)
                changed = True
        if right - left > max_side or bottom - top > max_side:
            return None
        if not changed:
            return left, top, right, bottom
    return None


def _pad(boxes: list[Box], window: Window, width: int, height: int, margin: int) -> Window:
    """A little room around the objects at the window's edges, when that cuts nothing new."""
    left, top, right, bottom = window
    padded = (max(0, left - margin), max(0, top - margin), min(width, right + margin), min(height, bottom + margin))
    return padded if tile_boxes(boxes, padded)[1] else window


def _area(window: Window) -> int:
    return (window[2] - window[0]) * (window[3] - window[1])


def _overlap(a: Window, b: Window) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def clean_windows(boxes: list[Box], width: int, height: int, *, seeds: Iterable[int], stride: int = 16,
                  max_side: int = 220, min_objects: int = 1, max_overlap: float = 0.5,
                  allowed=None) -> list[tuple[Window, list[Box]]]:
    """Windows that cut no object: square seeds scanned in reading order, each grown until clean, kept when it
    overlaps every window already kept by less than `max_overlap` of the smaller one. Deterministic."""
    kept: list[tuple[Window, list[Box]]] = []
    for seed in seeds:
        for top in range(0, height - seed + 1, stride):
            for left in range(0, width - seed + 1, stride):
                window = _grow(boxes, (left, top, left + seed, top + seed), max_side)
                if window is None or (allowed is not None and not allowed(window)):
                    continue
                if any(_overlap(window, other) > max_overlap * min(_area(window), _area(other)) for other, _ in kept):
                    continue
                window = _pad(boxes, window, width, height, margin=6)
                tile, clean = tile_boxes(boxes, window)
                if clean and len(tile) >= min_objects:
                    kept.append((window, tile))
    return kept


def _answer(boxes: list[Box], label: str) -> dict:
    return {"boxes": [{"x": x, "y": y, "w": w, "h": h, "label": label} for x, y, w, h in boxes]}


def coins_pack() -> DemoPack:
    image, boxes = coin_boxes()
    height, width = image.shape
    rows, media = [], {}
    path = "media/coins-full.png"
    media[path] = _png(Image.fromarray(image, mode="L"))
    rows.append(_row("coins-full", media=path, alt="Old coins of different sizes laid out on a dark surface.",
                     gold=_answer(boxes, "coin"),
                     explanation=f"There are {len(boxes)} coins; each box should hug the coin's rim."))
    windows = clean_windows(boxes, width, height, seeds=(64, 96, 128, 160), min_objects=1, max_overlap=0.6)
    for number, ((left, top, right, bottom), tile) in enumerate(windows):
        external_id = f"coins-{top:03d}-{left:03d}-{right - left}x{bottom - top}"
        path = f"media/{external_id}.png"
        media[path] = _png(Image.fromarray(image[top:bottom, left:right], mode="L"))
        is_gold = number % 4 == 1
        rows.append(_row(
            external_id, media=path, alt="A close-up of part of a tray of old coins.",
            gold=_answer(tile, "coin") if is_gold else None,
            explanation=(f"{len(tile)} coin(s): one box each, touching the rim on all four sides.") if is_gold else "",
        ))
    return DemoPack(
        slug="count-the-coins",
        campaign={
            "name": "Vision basics: object detection",
            "kind": "enterprise",
            "description": "Box annotations to train a counting model for a coin-sorting machine.",
            "client_name": "Acme Vision",
            "partner_token": "",
        },
        pack={
            "name": "Count the coins",
            "task_type": "bounding_boxes",
            "label_options": ["coin"],
            "instructions": (
                "Draw one box around every coin in the picture. Drag on the image to draw; drag a box to move it; "
                "drag its corners to resize. On a keyboard: N adds a box, arrows move it, Shift+arrows resize.\n\n"
                "Each box should touch the coin's rim on all four sides, without a gap and without cutting the coin. "
                "Box a coin that is cut by the edge of the picture only when at least half of it is visible. "
                "If there is no coin, submit with no boxes."
            ),
            "examples": [
                {"input": "Three coins, one of them half outside the picture", "answer": "3 boxes",
                 "why": "The cut coin shows at least half of itself, so it is boxed up to the edge."},
                {"input": "Two coins touching each other", "answer": "2 boxes",
                 "why": "Touching coins are still separate objects: one box each."},
                {"input": "Only a sliver of a coin at the corner", "answer": "no boxes",
                 "why": "Less than half of it is visible."},
            ],
            "difficulty": "advanced",
            "reward_points": 20,
            "reward_xp": 20,
            "labels_per_item": 3,
            "max_labels_per_item": 5,
            "gold_rate_percent": 20,
            "review_rate_percent": 20,
            "daily_cap": 80,
            "estimated_seconds": 60,
            "min_level": 2,
        },
        rows=rows,
        media=media,
    )


def nuclei_pack() -> DemoPack:
    image, boxes, brown = nuclei_boxes()
    height, width = brown.shape

    def in_stroma(window: Window) -> bool:
        left, top, right, bottom = window
        return brown[top:bottom, left:right].mean() <= 0.3

    windows = clean_windows(boxes, width, height, seeds=(64, 96, 128), min_objects=3, max_overlap=0.65,
                             allowed=in_stroma)
    rows, media = [], {}
    for number, ((left, top, right, bottom), tile) in enumerate(windows):
        external_id = f"nuclei-{top:03d}-{left:03d}-{right - left}x{bottom - top}"
        path = f"media/{external_id}.png"
        media[path] = _png(Image.fromarray(image[top:bottom, left:right]))
        is_exam = number % 3 == 0 and number < 18  # six exam slides
        is_gold = is_exam or number % 3 == 1 and number % 2 == 1
        rows.append(_row(
            external_id, media=path,
            alt="A microscope view of stained colon tissue: blue-purple nuclei in pale connective tissue.",
            gold=_answer(tile, "nucleus") if is_gold else None,
            explanation=(f"{len(tile)} nuclei: each blue-purple oval gets its own tight box; "
                         "touching nuclei are boxed separately.") if is_gold else "",
            exam=is_exam,
        ))
    return DemoPack(
        slug="medical-cell-nuclei",
        campaign={
            "name": "BioScan nuclei atlas",
            "kind": "dual",
            "description": "Nuclei annotations on immunohistochemistry slides for a pathology research atlas, "
                           "rewarded in points and BioScan's BIO token.",
            "client_name": "BioScan Labs",
            "partner_token": "BIO",
        },
        pack={
            "name": "Medical imaging: cell nuclei",
            "task_type": "bounding_boxes",
            "label_options": ["nucleus"],
            "instructions": (
                "These are microscope views of colon tissue stained for immunohistochemistry. Cell nuclei are the "
                "blue-purple ovals (hematoxylin); brown areas are stained gland cells and are not part of this task.\n\n"
                "Draw one tight box around each nucleus in the pale connective tissue. Nuclei that touch get one "
                "box each. Box a nucleus cut by the picture's edge only if at least half of it is visible. "
                "Faint smudges smaller than a nucleus are debris: leave them.\n\n"
                "This pack needs a qualification exam: five slides with known answers."
            ),
            "examples": [
                {"input": "Two nuclei touching end to end", "answer": "2 boxes",
                 "why": "Each nucleus is its own object, even when they touch."},
                {"input": "A long thin purple nucleus", "answer": "1 box",
                 "why": "Stromal nuclei are often elongated; the box follows its full length."},
                {"input": "A brown cell with a blue centre inside a gland", "answer": "no box",
                 "why": "Gland (brown) regions are outside this task."},
            ],
            "difficulty": "expert",
            "reward_points": 30,
            "reward_xp": 30,
            "partner_reward": 5,
            "labels_per_item": 3,
            "max_labels_per_item": 5,
            "gold_rate_percent": 20,
            "review_rate_percent": 25,
            "daily_cap": 40,
            "estimated_seconds": 90,
            "min_level": 3,
            "min_reputation": 600,
            "exam_required": True,
            "exam_size": 5,
            "exam_pass_percent": 60,
        },
        rows=rows,
        media=media,
    )


# ---- audio transcription --------------------------------------------------------------------------------
VOICES = ["en-us", "en", "en-us+f2", "en+m3"]


def wav_duration_ms(path: Path) -> int:
    with wave.open(str(path), "rb") as audio:
        return int(audio.getnframes() * 1000 / audio.getframerate())


def speech_pack() -> DemoPack | None:
    espeak = shutil.which("espeak-ng")
    if not espeak:
        log.warning("espeak-ng is not installed: the transcription demo pack is left out")
        return None

    rows, media = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for number, sentence in enumerate(demo_texts.SPOKEN_SENTENCES, start=1):
            voice = VOICES[(number - 1) % len(VOICES)]
            speed = 140 + 10 * ((number - 1) % 3)
            wav = Path(scratch) / f"{number}.wav"
            subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(wav), sentence], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = wav_duration_ms(wav) / 1000
            path = f"media/sentence-{number:03d}.wav"
            media[path] = wav.read_bytes()
            is_gold = number % 4 == 1
            rows.append(_row(
                f"sentence-{number:03d}", media=path,
                alt=f"A synthetic voice reading one short English sentence ({seconds:.1f} seconds).",
                gold={"text": sentence} if is_gold else None,
                explanation="Write every word as spoken, with normal capitals and the full stop or question mark."
                if is_gold else "",
            ))
    return DemoPack(
        slug="transcribe-short-sentences",
        campaign={
            "name": "Everyday speech corpus",
            "kind": "enterprise",
            "description": "Transcripts of short spoken sentences to test a voice assistant's speech recogniser.",
            "client_name": "VoiceWorks",
            "partner_token": "",
        },
        pack={
            "name": "Transcribe short sentences",
            "task_type": "audio_transcription",
            "label_options": [],
            "instructions": (
                "Listen to the recording and type exactly what is said, as one normal English sentence: a capital "
                "at the start, the final full stop or question mark, numbers written as words the way they are "
                "spoken.\n\n"
                "Use Loop or 'Replay last 3 s' for hard parts and slow the speed down to 0.75× if it helps. "
                "Ctrl+Space plays or pauses without leaving the text box. Do not add words that are not spoken."
            ),
            "examples": [
                {"input": "(a voice says) the bus leaves at seven", "answer": "The bus leaves at seven.",
                 "why": "A capital, the words as spoken, the full stop."},
                {"input": "(a voice asks) where is the station", "answer": "Where is the station?",
                 "why": "A question ends with a question mark."},
                {"input": "(a voice says) we need twenty chairs", "answer": "We need twenty chairs.",
                 "why": "Numbers are written as the words you hear."},
            ],
            "difficulty": "intermediate",
            "reward_points": 15,
            "reward_xp": 15,
            "labels_per_item": 2,
            "max_labels_per_item": 4,
            "gold_rate_percent": 20,
            "review_rate_percent": 15,
            "daily_cap": 100,
            "estimated_seconds": 30,
        },
        rows=rows,
        media=media,
    )
