"""Demo box packs: scikit-image's coins photo and its immunohistochemistry slide, with boxes found by
thresholding, labelling and `regionprops` as the known answers, cut into tiles that hold whole boxes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

from sapien.labeling.demo_content import DemoPack, item_row, png

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
    media[path] = png(Image.fromarray(image, mode="L"))
    rows.append(item_row("coins-full", media=path, alt="Old coins of different sizes laid out on a dark surface.",
                     gold=_answer(boxes, "coin"),
                     explanation=f"There are {len(boxes)} coins; each box should hug the coin's rim."))
    windows = clean_windows(boxes, width, height, seeds=(64, 96, 128, 160), min_objects=1, max_overlap=0.6)
    for number, ((left, top, right, bottom), tile) in enumerate(windows):
        external_id = f"coins-{top:03d}-{left:03d}-{right - left}x{bottom - top}"
        path = f"media/{external_id}.png"
        media[path] = png(Image.fromarray(image[top:bottom, left:right], mode="L"))
        is_gold = number % 4 == 1
        rows.append(item_row(
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
        media[path] = png(Image.fromarray(image[top:bottom, left:right]))
        is_exam = number % 3 == 0 and number < 18  # six exam slides
        is_gold = is_exam or number % 3 == 1 and number % 2 == 1
        rows.append(item_row(
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
