"""Contact sheets: thumbnails of a suite's or dataset's items with word boxes, face boxes and landmarks
drawn, so a person can see what is inside."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

KPS_COLOURS = ((255, 60, 60), (60, 255, 60), (255, 255, 0), (255, 0, 255), (0, 255, 255))


def _font(size: int):
    try:
        from tokbench.data.embedded.sources import font_path

        return ImageFont.truetype(str(font_path("matplotlib/DejaVuSans")), size)
    except Exception:  # the sheet is still useful with PIL's default bitmap font
        return ImageFont.load_default()


def thumbnail(item, dataset: str, size: int = 320) -> Image.Image:
    """One cell: the item (the frame with most annotations for videos) with its annotations drawn."""
    pixels = item.load()
    counts = [sum(w.frame == t for w in item.words) + sum(f.frame == t for f in item.faces)
              for t in range(len(pixels))]
    t = int(np.argmax(counts)) if counts else 0
    img = Image.fromarray(pixels[t])
    s = size / max(img.size)
    img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
    d = ImageDraw.Draw(img)
    for w in item.words:
        if w.frame == t:
            d.rectangle([w.box[0] * s, w.box[1] * s, w.box[2] * s - 1, w.box[3] * s - 1], outline=(0, 255, 0))
    for f in item.faces:
        if f.frame == t:
            d.rectangle([f.box[0] * s, f.box[1] * s, f.box[2] * s - 1, f.box[3] * s - 1], outline=(255, 140, 0))
            for (x, y), c in zip(f.kps, KPS_COLOURS):
                px, py = (x + 0.5) * s, (y + 0.5) * s
                d.ellipse([px - 2, py - 2, px + 2, py + 2], fill=c)
    cell = Image.new("RGB", (size + 8, size + 40), (32, 32, 32))
    cell.paste(img, (4 + (size - img.width) // 2, 4 + (size - img.height) // 2))
    label = f"{dataset}/{item.id}"
    extra = f"{len(item.words)} words, {len(item.faces)} faces" + (f", frame {t}/{len(pixels)}" if len(pixels) > 1 else "")
    cd = ImageDraw.Draw(cell)
    cd.text((4, size + 8), label, fill=(255, 255, 255), font=_font(12))
    cd.text((4, size + 23), extra, fill=(200, 200, 200), font=_font(11))
    return cell


def contact_sheet(entries: list[tuple[str, object]], out_png: str | Path, columns: int = 6, size: int = 320) -> Path:
    """``entries``: (dataset name, Item) pairs, drawn in order."""
    cells = [thumbnail(item, ds, size) for ds, item in entries]
    rows = (len(cells) + columns - 1) // columns
    w, h = size + 8, size + 40
    sheet = Image.new("RGB", (columns * w, max(1, rows) * h), (16, 16, 16))
    for i, c in enumerate(cells):
        sheet.paste(c, ((i % columns) * w, (i // columns) * h))
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def pick(items: list, n: int) -> list:
    """``n`` items spread evenly over the list (all of them when there are fewer)."""
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]
