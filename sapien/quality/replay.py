"""Crowd replay: real crowd workers' answers fed through our own assignment, submission and aggregation.

Reads a folder of either format of the shared crowd datasets:
- `answer.csv` (`question,worker,answer`, header) + `truth.csv` (`question,truth`, header), or
- `crowd.txt` (`item worker label`, whitespace separated) + `truth.txt` (`item label`).

It creates a campaign and a text-classification pack whose labels are the dataset's classes, one member
per worker, and items for every question that has a truth and answers. A seeded 5 % of the items
(`gold_percent`) become gold items carrying their true label. Every answer then goes through
`leases.lease_item` + `submissions.submit_answer`, exactly as a member's would: gold answers are judged
(feeding reputation and the members' confusion estimates), other answers feed the online aggregate (the
decision job's work runs after each answer, as a worker keeping up would), and an answer whose item has
already retired is skipped — that is where adaptive redundancy saves labels.

Choices, documented because they shape the figures:
- Order: the answers are shuffled with a fixed seed; within each worker's own stream their gold answers
  come first (a platform shows new members known-answer items early, as a qualification stage would).
- Redundancy: items start wanting `labels_per_item` (3) answers and may grow to the most answers any item
  has in the dataset; from the third answer on, an item retires once its calibrated online confidence
  reaches the replay's threshold (`confidence`, 0.95, the platform's default) with at least two agreeing
  answers (see `aggregation.online_posterior`). Starting at 3 rather than 1 skips two online decisions and
  target raises per item, most of the per-answer work on D_Product (3 answers per item).
- Review sampling is off for the replay pack (`review_rate_percent = 0`): the replay has no reviewers.
- The pack pays nothing (a community campaign with no revenue shares): a replay is not paid work.
- At the end the pack is aggregated in batch with the "calibrated" method (the model right on most gold
  items, its confidence Platt-scaled on them), and every item with answers gets a label (`finalize`).
- A row the import refuses (say an external id over 2,048 characters) is reported and skipped with its
  answers; the replay goes on.
- Calibration is reported twice: the expected calibration error and reliability table of the final
  labels, and of the labels items retired with online (their confidence before the batch relabels them).

Figures (default seed; `make bench`, see docs/benchmarks.md): accuracy, labels per non-gold item, ECE.
Before issue 18: music_genre 0.735 at 3.78 (ECE 0.18), zencrowd_us aborted on a 138-character id (0.827
at 5.34, ECE 0.14, once it imports), bird 0.913 at 20.04, RTE 0.924 at 9.61, D_PosSent 0.959 at 9.82,
D_Product 0.939 at 3.00 (an older aggregator). After (`make bench`, all six in one run, 2026-12-06 19:14):
music_genre 0.788 at 3.85 (ECE 0.050), zencrowd_us 0.899 at 5.33 (0.032), bird 0.913 at 18.74 (0.047),
RTE 0.926 at 7.98 (0.031), D_PosSent 0.959 at 8.79 (0.017), D_Product 0.939 at 3.00 (0.025; its 712
items flagged as never converging are labelled by the batch model once the pack is finalized, see
quality/calibration.py). crowd-kit on every answer, scored on
the same items: majority vote 0.716 / 0.870 / 0.757 / 0.874 / 0.934 / 0.896, Dawid-Skene 0.764 / 0.842 /
0.893 / 0.925 / 0.959 / 0.939.
The replay goes through lease + submit + settlement for every answer (about 20 database round trips
each): the six replays (56,509 answers fed) took 18.5 minutes in one run on this 2-CPU machine,
18 to 27 ms an answer (bird, with up to 39 answers per item, 18 ms); a busier machine has taken four
times that.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import func, select

from sapien.accounts import service as accounts
from sapien.extensions import db
from sapien.labeling import errors as labeling_errors
from sapien.labeling import imports, leases, packs, submissions
from sapien.labeling.models import Item, Submission
from sapien.quality import batch, decisions
from sapien.quality.models import VerifiedLabel

if TYPE_CHECKING:
    from sapien.quality.calibration import ReliabilityRow

DEFAULT_GOLD_PERCENT = 5.0
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 20240601
DEFAULT_LABELS_PER_ITEM = 3


class ReplayError(Exception):
    pass


@dataclass
class CrowdDataset:
    name: str
    answers: list[tuple[str, str, str]]  # (item, worker, label)
    truth: dict[str, str]
    classes: list[str] = field(default_factory=list)
    # Answer rows left out, by reason: too few columns, an item without truth, a worker's second answer.
    ignored: dict[str, int] = field(default_factory=dict)
    # Rows that could not be used, each with its file and row ("answer.csv row 7: not UTF-8 text").
    problems: list[str] = field(default_factory=list)


MAX_LABEL = 64  # a pack's labels are at most this long (labeling.packs.LABEL_MAX_LENGTH)


def _read_table(path: Path, *, header: bool) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """The rows of a .csv or whitespace-separated file with their line numbers, and the rows it could not
    read (not UTF-8, not valid CSV) as "answer.csv row 7: …" problems: a bad row is skipped, not fatal."""
    try:
        content = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    except OSError as error:
        raise ReplayError(f"{path} could not be read: {error}") from None
    numbered: list[tuple[int, list[str]]] = []
    problems: list[str] = []
    if path.suffix == ".csv":
        reader = csv.reader(io.StringIO(content, newline=""))
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                problems.append(f"{path.name} row {line}: not valid CSV ({error})")
                line = max(line + 1, reader.line_num + 1)
                continue
            if row:
                numbered.append((line, row))
            line = reader.line_num + 1
    else:
        numbered = [(number, text.split()) for number, text in enumerate(content.splitlines(), start=1) if text.strip()]
    if header:
        numbered = numbered[1:]
    rows = []
    for number, row in numbered:
        if any("\udc80" <= character <= "\udcff" for cell in row for character in cell):
            problems.append(f"{path.name} row {number}: not UTF-8 text")
        elif any("\x00" in cell for cell in row):
            problems.append(f"{path.name} row {number}: holds the NUL character")
        else:
            rows.append((number, row))
    return rows, problems


def read_crowd_dataset(folder: Path) -> CrowdDataset:
    folder = Path(folder)
    if (folder / "answer.csv").exists() and (folder / "truth.csv").exists():
        answer_file, truth_file, header = folder / "answer.csv", folder / "truth.csv", True
    elif (folder / "crowd.txt").exists() and (folder / "truth.txt").exists():
        answer_file, truth_file, header = folder / "crowd.txt", folder / "truth.txt", False
    else:
        raise ReplayError(f"{folder} holds neither answer.csv + truth.csv nor crowd.txt + truth.txt")
    answer_rows, problems = _read_table(answer_file, header=header)
    truth_rows, truth_problems = _read_table(truth_file, header=header)
    problems += truth_problems
    truth = {}
    for number, row in truth_rows:
        if len(row) >= 2 and len(row[1].strip()) > MAX_LABEL:
            problems.append(f"{truth_file.name} row {number}: the truth is longer than {MAX_LABEL} characters, the longest label a pack takes")
        elif len(row) >= 2:
            truth[row[0].strip()] = row[1].strip()
    ignored = {"short rows": 0, "items without truth": 0, "repeated answers": 0}  # short: a missing or empty column
    answers: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for number, row in answer_rows:
        item, worker, label = (row[0].strip(), row[1].strip(), row[2].strip()) if len(row) >= 3 else ("", "", "")
        if not (item and worker and label):
            ignored["short rows"] += 1
        elif len(label) > MAX_LABEL:
            problems.append(f"{answer_file.name} row {number}: the answer is longer than {MAX_LABEL} characters, the longest label a pack takes")
        elif item not in truth:
            ignored["items without truth"] += 1
        elif (item, worker) in seen:
            ignored["repeated answers"] += 1  # a member answers an item once: the first answer stands
        else:
            seen.add((item, worker))
            answers.append((item, worker, label))
    if not answers:
        raise ReplayError(f"{folder} has no answers for items with a known truth" + (f" ({problems[0]})" if problems else ""))
    classes = sorted({label for _, _, label in answers} | set(truth.values()), key=lambda v: (len(v), v))
    return CrowdDataset(folder.name, answers, truth, classes, {reason: n for reason, n in ignored.items() if n}, problems)


def feeding_order(dataset: CrowdDataset, gold_items: set[str], seed: int) -> list[tuple[str, str, str]]:
    """Seeded shuffle of all answers; each worker's gold answers are moved to the front of their own stream
    (the positions in the overall order stay, only which of the worker's answers fills them changes)."""
    order = list(dataset.answers)
    random.Random(seed).shuffle(order)
    positions: dict[str, list[int]] = defaultdict(list)
    for index, (_, worker, _) in enumerate(order):
        positions[worker].append(index)
    result: list[tuple[str, str, str] | None] = [None] * len(order)
    for indexes in positions.values():
        mine = sorted((order[i] for i in indexes), key=lambda a: a[0] not in gold_items)
        for index, answer in zip(indexes, mine, strict=True):
            result[index] = answer
    return [a for a in result if a is not None]


@dataclass
class ReplayReport:
    dataset: str
    pack_id: int
    pack_slug: str
    items: int
    gold: int
    workers: int
    answers_in_dataset: int
    answers_fed: int
    answers_skipped: int
    labels_per_item: float
    accuracy: float
    correct: int
    scored: int
    seconds: float
    # Calibration of the final labels' confidence on the scored items: expected calibration error and
    # the reliability table (10 equal-width bins); the same for the labels items retired with online.
    ece: float = 0.0
    reliability: list[ReliabilityRow] = field(default_factory=list)
    online_labels: int = 0
    online_ece: float = 0.0
    online_reliability: list[ReliabilityRow] = field(default_factory=list)
    answers_not_imported: int = 0
    import_problems: list[str] = field(default_factory=list)
    rows_skipped: list[str] = field(default_factory=list)  # dataset rows that could not be read or used

    def summary_line(self) -> str:
        return (
            f"accuracy={self.accuracy:.4f} labels_per_item={self.labels_per_item:.2f} ece={self.ece:.4f} "
            f"online_ece={self.online_ece:.4f} items={self.items} gold={self.gold}"
        )

    def reliability_lines(self) -> list[str]:
        """The reliability tables as text: stated confidence against the share right, per bin."""
        lines = []
        for title, error, rows, count in (
            ("final labels", self.ece, self.reliability, self.scored),
            ("labels at online retirement", self.online_ece, self.online_reliability, self.online_labels),
        ):
            lines.append(f"{title}: expected calibration error {error:.4f} over {count} items")
            lines.append("  confidence bin   items  stated  right")
            for row in rows:
                lines.append(f"  [{row.low:.1f}, {row.high:.1f}{']' if row.high >= 1 else ')'}  {row.count:>9}  {row.confidence:.3f}   {row.accuracy:.3f}")
        return lines


def _replay_pack(campaign_id: int, dataset: CrowdDataset, slug: str, labels_per_item: int, most: int, now: datetime):
    return packs.create_pack(
        campaign_id,
        {
            "name": f"Replay {dataset.name}"[:120],
            "slug": slug,
            "task_type": "text_classification",
            "label_options": dataset.classes,
            "instructions": "Crowd replay of a public research dataset.",
            "labels_per_item": max(1, min(labels_per_item, most)),
            "max_labels_per_item": min(50, max(most, labels_per_item)),
            "gold_rate_percent": 0,
            "review_rate_percent": 0,
            "reward_points": 0,
            "reward_xp": 0,
            "revenue_shares": 0,
            "daily_cap": 100_000,
            "lease_minutes": 60,
        },
        actor_id=None,
        now=now,
    )


def replay(
    folder: Path,
    *,
    now: datetime,
    gold_percent: float = DEFAULT_GOLD_PERCENT,
    confidence: float = DEFAULT_CONFIDENCE,
    labels_per_item: int = DEFAULT_LABELS_PER_ITEM,
    seed: int = DEFAULT_SEED,
    echo: Callable[[str], None] = lambda _line: None,
) -> ReplayReport:
    from sapien.quality.calibration import reliability

    started = time.perf_counter()
    dataset = read_crowd_dataset(Path(folder))
    if not 0 <= gold_percent <= 50:
        raise ReplayError("the gold share must be between 0 and 50 percent")
    items = sorted({item for item, _, _ in dataset.answers}, key=lambda v: (len(v), v))
    rng = random.Random(seed)
    gold_count = round(len(items) * gold_percent / 100) if gold_percent else 0
    gold_items = set(rng.sample(items, gold_count)) if gold_count else set()
    per_item: dict[str, int] = defaultdict(int)
    for item, _, _ in dataset.answers:
        per_item[item] += 1
    most = max(per_item.values())
    run = f"{now:%Y%m%d%H%M%S}{rng.randrange(1000):03d}"
    slug = f"replay-{''.join(c if c.isalnum() else '-' for c in dataset.name.lower())[:30]}-{run}"[:64]
    echo(f"{dataset.name}: {len(items)} items, {len(gold_items)} gold, {len({w for _, w, _ in dataset.answers})} workers, {len(dataset.answers)} answers")
    if dataset.ignored:
        echo("  answer rows left out: " + ", ".join(f"{count} {reason}" for reason, count in dataset.ignored.items()))
    if dataset.problems:
        echo(f"  {len(dataset.problems)} row(s) skipped: " + "; ".join(dataset.problems[:5]) + (" …" if len(dataset.problems) > 5 else ""))

    campaign = packs.create_campaign(
        name=f"Crowd replay: {dataset.name}"[:120], kind="community", description=f"Replay of {folder}", actor_id=None, now=now
    )
    try:
        pack = _replay_pack(campaign.id, dataset, slug, labels_per_item, most, now)
    except labeling_errors.LabelingError as error:
        raise ReplayError(f"the dataset cannot make a pack: {error.message}") from None
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "items.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for item in items:
                row = {"external_id": item, "text": f"{dataset.name} question {item}"}
                if item in gold_items:
                    row["gold"] = {"labels": [dataset.truth[item]]}
                    row["explanation"] = "The dataset's ground truth."
                handle.write(json.dumps(row) + "\n")
        report = imports.import_items(pack.id, path, media_dir=None, now=now)
    item_ids = dict(db.session.execute(select(Item.external_id, Item.id).where(Item.pack_id == pack.id)).all())
    # A row the import refused is skipped and reported (its answers with it), never the end of the replay.
    import_problems = [f"line {problem.line}: {problem.message}" for problem in report.problems]
    for problem in import_problems[:5]:
        echo(f"  import problem, item skipped: {problem}")
    if len(import_problems) > 5:
        echo(f"  … and {len(import_problems) - 5} more import problems")
    if not item_ids:
        raise ReplayError(f"no item imported: {import_problems[:3]}")
    try:
        packs.publish_pack(pack.id, now=now)
    except labeling_errors.InvalidSettings as error:
        raise ReplayError(f"the replay pack cannot be published: {error.message}") from None
    items = [item for item in items if item in item_ids]
    gold_items &= set(items)

    password_hash = accounts.hash_password(f"replay-{run}-{rng.random()}")  # one hash for every replay member: hashing is slow
    member_of: dict[str, int] = {}
    for number, worker in enumerate(sorted({w for _, w, _ in dataset.answers})):
        username = f"rp{run[-9:]}w{number}"
        user = accounts.sign_up(
            accounts.SignUp(username=username, email=f"{username}@replay.invalid", password=f"replay-{run}-{number}-password"),
            now=now,
            password_hash=password_hash,
        )
        member_of[worker] = user.id

    previous_threshold = current_app.config.get("QUALITY_CONFIDENCE_THRESHOLD")
    current_app.config["QUALITY_CONFIDENCE_THRESHOLD"] = confidence
    fed = skipped = not_imported = 0
    try:
        order = feeding_order(dataset, gold_items, seed)
        for step, (item, worker, label) in enumerate(order):
            moment = now + timedelta(milliseconds=step)
            if item not in item_ids:
                not_imported += 1
                continue
            if item not in gold_items and db.session.scalar(select(Item.status).where(Item.id == item_ids[item])) != "open":
                skipped += 1  # retired: the platform no longer offers it to anyone
                continue
            try:
                lease = leases.lease_item(member_of[worker], item_ids[item], moment)
            except labeling_errors.NoWorkLeft:
                skipped += 1
                continue
            submissions.submit_answer(member_of[worker], lease.id, {"labels": [label]}, now=moment)
            # The decision job's work, as a worker keeping up with the answers does it.
            decisions.decide_awaiting_items(now=moment)
            fed += 1
            if step and step % 5000 == 0:
                echo(f"  {step}/{len(order)} answers ({fed} fed, {skipped} skipped)")
    finally:
        if previous_threshold is None:
            current_app.config.pop("QUALITY_CONFIDENCE_THRESHOLD", None)
        else:
            current_app.config["QUALITY_CONFIDENCE_THRESHOLD"] = previous_threshold

    scored = [item for item in items if item not in gold_items]

    def verified() -> dict[str, tuple[dict, float]]:
        rows = db.session.execute(
            select(Item.external_id, VerifiedLabel.answer, VerifiedLabel.confidence)
            .join(VerifiedLabel, VerifiedLabel.item_id == Item.id)
            .where(Item.pack_id == pack.id)
        )
        return {external_id: (answer or {}, confidence) for external_id, answer, confidence in rows}

    def right(answer: dict, item: str) -> bool:
        return answer.get("labels") == [dataset.truth[item]]

    # The labels the online posterior retired items with, before the batch aggregation relabels them.
    online = verified()
    online_scored = [item for item in scored if item in online]
    online_ece, online_table = reliability([online[i][1] for i in online_scored], [right(online[i][0], i) for i in online_scored])

    finish = now + timedelta(milliseconds=len(dataset.answers) + 1)
    aggregation = batch.aggregate_pack(pack.id, now=finish, finalize=True)
    echo(f"  aggregated {aggregation.answers} answers with {aggregation.method} in {aggregation.seconds:.2f} s")

    labels = verified()
    labelled = [item for item in scored if item in labels]
    correct = sum(1 for item in labelled if right(labels[item][0], item))
    ece, table = reliability([labels[i][1] for i in labelled], [right(labels[i][0], i) for i in labelled])
    used = db.session.scalar(
        select(func.count(Submission.id))
        .join(Item, Item.id == Submission.item_id)
        .where(Submission.pack_id == pack.id, Item.is_gold.is_(False), Submission.status == "accepted")
    ) or 0
    return ReplayReport(
        dataset=dataset.name,
        pack_id=pack.id,
        pack_slug=pack.slug,
        items=len(items),
        gold=len(gold_items),
        workers=len(member_of),
        answers_in_dataset=len(dataset.answers),
        answers_fed=fed,
        answers_skipped=skipped,
        answers_not_imported=not_imported,
        import_problems=import_problems,
        rows_skipped=dataset.problems,
        labels_per_item=used / len(scored) if scored else 0.0,
        accuracy=correct / len(scored) if scored else 0.0,
        correct=correct,
        scored=len(scored),
        seconds=time.perf_counter() - started,
        ece=ece,
        reliability=table,
        online_labels=len(online_scored),
        online_ece=online_ece,
        online_reliability=online_table,
    )
