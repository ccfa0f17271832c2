"""Demo task packs made offline from real data with known answers, written in the import format
(a folder per pack: pack.json + items.jsonl + media files; see `labeling.imports.import_pack_folder`);
`labeling.seeding.write_demo_packs` writes them all. The box packs are in `demo_boxes`.

- written text: product reviews, news headlines, passages with injected typing/OCR errors (`demo_texts`);
- scikit-learn's handwritten digits, rendered to PNG;
- scikit-image's sample photo of coins and its immunohistochemistry slide, with boxes found by
  thresholding, labelling and `regionprops` as the known answers, cut into tiles;
- sentences spoken by Debian's espeak-ng.

Everything is deterministic (fixed seeds, sorted outputs): two runs write the same bytes.
"""

from __future__ import annotations

import io
import logging
import random
import shutil
import subprocess
import tempfile
import wave
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


def item_row(external_id: str, *, text: str | None = None, media: str | None = None, alt: str | None = None,
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


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# ---- text classification ------------------------------------------------------------------------
def sentiment_pack() -> DemoPack:
    rows = []
    for number, (review, label, guideline) in enumerate(demo_texts.REVIEWS, start=1):
        gold = {"labels": [label]} if guideline else None
        rows.append(item_row(f"review-{number:03d}", text=review, gold=gold, explanation=guideline))
    for number, (review, label, guideline) in enumerate(demo_texts.REVIEW_EXAM, start=1):
        rows.append(item_row(f"review-exam-{number}", text=review, gold={"labels": [label]}, explanation=guideline, exam=True))
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
        rows.append(item_row(f"headline-{number:03d}", text=headline, gold=gold, explanation=guideline))
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
        rows.append(item_row(f"passage-{number:03d}", text=damaged, gold={"text": clean} if is_gold else None,
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
        media[path] = png(image)
        label = str(int(digits.target[index]))
        is_gold = position % 7 == 0
        rows.append(item_row(
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
            rows.append(item_row(
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
