"""Word-box proposals for real text images (the first, automatic half of the real-text annotation).

rapidocr 3.10 (PP-OCRv6) finds text lines and reads them; each line is then split into words at the
widest ink gaps (as many gaps as the line's transcription has spaces) and every word gets a tight ink
box plus a small margin. Nothing here is ground truth yet: every proposal is then checked by eye on
crop sheets (``review_sheet``) and corrected or dropped in ``datasets/annotations/text_real.json``.

Run: python datasets/tools/propose_words.py SOURCE_KEY OUT.json [SCALE [flatten|- [LINES_JSON|- [ROT90]]]]
(keys as in datasets/manifest.json; LINES_JSON maps a line index to its text read by eye)
"""
from __future__ import annotations

import json
import math
import sys

import numpy as np
from PIL import Image, ImageDraw


def otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(values)) if values.size and values.min() < values.max() else float(values.mean())


def split_line(grey: np.ndarray, quad: np.ndarray, words: list[str], hints: list[float] | None = None,
               dark_text: bool | None = None) -> list[dict]:
    """Split one near-horizontal line into word boxes at ink gaps.

    ``hints`` are the x positions (image coordinates) where the recogniser put the word boundaries; each
    boundary snaps to the nearest run of empty columns (the widest one when several are equally near).
    Without hints the widest gaps are taken. ``flag`` is set when a split is not clear-cut."""
    x0, y0 = np.floor(quad.min(0)).astype(int)
    x1, y1 = np.ceil(quad.max(0)).astype(int)
    h = y1 - y0
    ex = max(2, int(round(0.25 * h)))
    H, W = grey.shape
    bx0, bx1 = max(0, x0 - ex), min(W, x1 + ex)
    by0, by1 = max(0, y0 - ex), min(H, y1 + ex)
    band = grey[by0:by1, bx0:bx1].astype(np.float64)
    # ink = pixels darker (or lighter) than their neighbourhood, so shading across a page does not matter
    from scipy.ndimage import gaussian_filter

    contrast = gaussian_filter(band, sigma=max(2.0, 0.6 * h)) - band
    cy, cx = slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0)
    if dark_text is None:
        dark_text = np.median(band[cy, cx]) > band[cy, cx].mean()  # text is the minority: it pulls the mean
    if not dark_text:
        contrast = -contrast
    t = otsu(contrast[cy, cx])
    ink = contrast > max(t, 0.0)
    # vertical extent: the runs of inked rows that overlap the detector's line box
    # (rows with a few stray pixels from neighbouring lines' descenders count as empty)
    counts = ink.sum(1)
    cy0, cy1 = y0 - by0, y1 - by0
    if counts[cy0:cy1].max(initial=0) == 0:
        return []
    peak = cy0 + int(np.argmax(counts[cy0:cy1]))
    runs = _runs(counts > 0.02 * counts.max())
    keep = [(s, e) for s, e in runs if s <= peak < e]
    top, bottom = keep[0]
    cols = ink[top:bottom].any(0)
    inked = np.flatnonzero(cols)
    if inked.size == 0:
        return []
    c_first, c_last = inked[0], inked[-1]
    gaps = [(s, e) for s, e in _runs(~cols) if s > c_first and e <= c_last]
    k = len(words) - 1
    if k > len(gaps):
        return [{"text": " ".join(words), "flag": "fewer ink gaps than spaces"}]
    flag = ""
    if hints is not None and len(hints) == k:
        chosen = []
        for hx in hints:
            hx -= bx0
            dist = [max(0, s - hx, hx - e) for s, e in gaps]
            best = min(range(len(gaps)), key=lambda i: (dist[i], -(gaps[i][1] - gaps[i][0])))
            chosen.append(gaps[best])
            if dist[best] > 0.6 * h:
                flag = f"boundary hint {hx + bx0:.0f} far from any ink gap"
        if len(set(chosen)) != len(chosen):
            flag = "two boundaries snapped to one gap"
    else:
        order = sorted(gaps, key=lambda g: -(g[1] - g[0]))
        chosen = order[:k]
        if k and len(order) > k and order[k - 1][1] - order[k - 1][0] <= order[k][1] - order[k][0]:
            flag = "ambiguous split"
    chosen = sorted(chosen)
    bounds = [c_first] + [v for g in chosen for v in g] + [c_last + 1]
    out = []
    pad = max(1, int(round(0.1 * (bottom - top))))
    for i, word in enumerate(words):
        s, e = bounds[2 * i], bounds[2 * i + 1]
        seg = ink[top:bottom, s:e]
        rr = np.flatnonzero(seg.any(1))
        if e <= s or rr.size == 0:
            out.append({"text": word, "flag": "empty segment"})
            continue
        wy0, wy1 = top + rr[0], top + rr[-1] + 1
        box = [bx0 + s - pad, by0 + wy0 - pad, bx0 + e + pad, by0 + wy1 + pad]
        box = [max(0, box[0]), max(0, box[1]), min(W, box[2]), min(H, box[3])]
        out.append({"text": word, "box": [int(v) for v in box], "flag": flag})
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index runs where ``mask`` is True."""
    runs, r = [], 0
    while r < len(mask):
        if mask[r]:
            s = r
            while r < len(mask) and mask[r]:
                r += 1
            runs.append((s, r))
        else:
            r += 1
    return runs


def rotate_points(pts: np.ndarray, angle_deg: float, src_size, dst_size) -> np.ndarray:
    """Map points through PIL's ``rotate(angle, expand=True)`` (counter-clockwise about the centre)."""
    a = math.radians(angle_deg)
    cx, cy = src_size[0] / 2, src_size[1] / 2
    dx, dy = dst_size[0] / 2, dst_size[1] / 2
    x, y = pts[:, 0] - cx, pts[:, 1] - cy
    xr = x * math.cos(a) + y * math.sin(a)
    yr = -x * math.sin(a) + y * math.cos(a)
    return np.stack([xr + dx, yr + dy], 1)


def flatten_shading(rgb: np.ndarray, sigma: float = 12.0) -> np.ndarray:
    """Divide out slow illumination changes (page shadows) so the detector sees even contrast; only the
    proposals use this, the dataset keeps the original pixels."""
    from scipy.ndimage import gaussian_filter

    g = rgb.astype(np.float64).mean(2)
    bg = gaussian_filter(np.maximum.reduce([g, gaussian_filter(g, 2)]), sigma)
    flat = np.clip(g / np.maximum(bg, 1) * 220, 0, 255).astype(np.uint8)
    return np.repeat(flat[..., None], 3, 2)


def propose(rgb: np.ndarray, scale: float = 1.0, flatten: bool = False,
            line_text: dict[int, str] | None = None) -> list[dict]:
    """Word proposals; ``line_text`` replaces the recogniser's reading of a line (by index) with one read by
    eye, whose words are then split at the widest ink gaps."""
    from rapidocr import RapidOCR

    eng = RapidOCR(params={"Global.log_level": "error"})
    if flatten:
        rgb = flatten_shading(rgb)
    src = Image.fromarray(rgb)
    det_img = src if scale == 1.0 else src.resize((round(src.width * scale), round(src.height * scale)), Image.LANCZOS)
    r = eng(np.asarray(det_img), return_word_box=True)
    if r.txts is None:
        return []
    quads = [np.asarray(b, float) / scale for b in r.boxes]
    rotations: dict[float, Image.Image] = {}
    props = []
    for li, (q, t, s, wr) in enumerate(zip(quads, r.txts, r.scores, r.word_results)):
        # deskew each line on its own (pages are often slightly rotated or curved)
        angle = round(math.degrees(math.atan2(q[1, 1] - q[0, 1], q[1, 0] - q[0, 0])), 1)
        rotated = abs(angle) > 0.3
        if rotated:
            if angle not in rotations:
                rotations[angle] = src.convert("L").rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255)
            rot = rotations[angle]
            grey = np.asarray(rot)
            fwd = lambda p, rot=rot, angle=angle: rotate_points(p, angle, src.size, rot.size)  # noqa: E731
        else:
            rot, grey = None, np.asarray(src.convert("L"))
            fwd = lambda p: p  # noqa: E731
        words = [w[0] for w in wr]
        wq = [fwd(np.asarray(w[2], float) / scale) for w in wr]
        hints = [(wq[i][:, 0].max() + wq[i + 1][:, 0].min()) / 2 for i in range(len(wq) - 1)]
        if line_text and li in line_text:
            t, s, words, hints = line_text[li], 1.0, line_text[li].split(), None
        for w in split_line(grey, fwd(q), words, hints):
            w.update(line=li, line_text=t, line_score=round(float(s), 4))
            if float(s) < 0.9:
                w["flag"] = (w.get("flag", "") + "; low-confidence line").lstrip("; ")
            if "box" in w and rotated:
                x0, y0, x1, y1 = w["box"]
                corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)
                back = rotate_points(corners, -angle, rot.size, src.size)
                w["quad"] = np.round(back, 1).tolist()
                w["box"] = [int(math.floor(back[:, 0].min())), int(math.floor(back[:, 1].min())),
                            int(math.ceil(back[:, 0].max())), int(math.ceil(back[:, 1].max()))]
            props.append(w)
    return props


def review_sheet(rgb: np.ndarray, words: list[dict], path: str, start: int = 0, per_sheet: int = 60,
                 zoom_h: int = 48) -> None:
    """Crops (scaled to a common height) with their index and proposed text beneath, for checking by eye."""
    cells = []
    for i, w in enumerate(words[start:start + per_sheet], start):
        x0, y0, x1, y1 = w["box"]
        crop = Image.fromarray(rgb[y0:y1, x0:x1])
        s = zoom_h / max(1, crop.height)
        crop = crop.resize((max(1, round(crop.width * s)), zoom_h), Image.NEAREST)
        cell = Image.new("RGB", (max(crop.width, 160) + 8, zoom_h + 26), "white")
        cell.paste(crop, (4, 2))
        ImageDraw.Draw(cell).text((4, zoom_h + 6), f"{i}: {w['text']}", fill=(200, 0, 0))
        cells.append(cell)
    cols, x, y, rowh, width = [], 0, 0, 0, 1500
    for c in cells:
        if x + c.width > width:
            x, y = 0, y + rowh
            rowh = 0
        cols.append((c, x, y))
        x += c.width
        rowh = max(rowh, c.height)
    sheet = Image.new("RGB", (width, y + rowh), (230, 230, 230))
    for c, cx, cy in cols:
        sheet.paste(c, (cx, cy))
    sheet.save(path)


if __name__ == "__main__":
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tokbench.data.embedded.sources import read_source_rgb

    key, out = sys.argv[1], sys.argv[2]
    scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    flatten = len(sys.argv) > 4 and sys.argv[4] == "flatten"
    lines = json.loads(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != "-" else {}
    rot90 = int(sys.argv[6]) if len(sys.argv) > 6 else 0  # item = np.rot90(source, rot90)
    rgb = np.ascontiguousarray(np.rot90(read_source_rgb(key), rot90))
    props = propose(rgb, scale, flatten, {int(k): v for k, v in lines.items()})
    with open(out, "w") as f:
        json.dump(props, f, indent=1)
    print(f"{len(props)} proposals -> {out}")


def refine_box(grey: np.ndarray, rough: list[float], dark_text: bool | None = None, min_blob: int = 3) -> list[int]:
    """Tight ink box (plus a margin of 10 % of its height) inside a rough box drawn by eye."""
    from scipy.ndimage import gaussian_filter, label

    x0, y0, x1, y1 = [int(round(v)) for v in rough]
    region = grey[y0:y1, x0:x1].astype(np.float64)
    h = y1 - y0
    contrast = gaussian_filter(region, sigma=max(2.0, 0.6 * h)) - region
    if dark_text is None:
        dark_text = np.median(region) > region.mean()
    if not dark_text:
        contrast = -contrast
    ink = contrast > max(otsu(contrast), 0.0)
    lab, n = label(ink)
    sizes = np.bincount(lab.ravel())
    keep = np.isin(lab, [i for i in range(1, n + 1) if sizes[i] >= min_blob])
    ys, xs = np.nonzero(keep)
    if xs.size == 0:
        raise ValueError(f"no ink inside {rough}")
    bx0, bx1, by0, by1 = x0 + xs.min(), x0 + xs.max() + 1, y0 + ys.min(), y0 + ys.max() + 1
    pad = max(1, int(round(0.1 * (by1 - by0))))
    H, W = grey.shape
    return [max(0, int(bx0 - pad)), max(0, int(by0 - pad)), min(W, int(bx1 + pad)), min(H, int(by1 + pad))]
