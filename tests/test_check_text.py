"""tokbench check on text metrics (T-ACC / T-NED) from real OCR runs.

Two sets: words rendered here with DejaVu Sans (matplotlib) at sizes that land in the TokBench S/M/L text
bins at 256, read by the offline OCR engine (rapidocr); and the built-in ``text-face`` suite on its own data,
which must score text once the text metric and the embedded datasets are wired in.
"""
from pathlib import Path

import numpy as np
import pytest

from tokbench import check as C
from tokbench.bins import TEXT_BINS
from tokbench.data.dataset import DATASETS, Dataset
from tokbench.data.items import Item, Word
from tokbench.pipeline import RunConfig, run
from tokbench.report import load_report
from tokbench.suites import Suite, get_suite, list_suites, register_suite

WORDS = ("market quality Street Coffee nineteen Window Garden station River yellow Bakery Museum Library orange "
         "Theatre morning Harbour pocket Bridge silver Castle bottle Forest winter Pharmacy ticket Hospital number "
         "Airport letter Kitchen planet Village summer Office candle Stadium mirror Factory basket Island").split()
WIDTH, HEIGHT = 512, 384


def render_words(root: Path, n_images=4, seed=0) -> dict[str, tuple[Word, ...]]:
    """Lines of dark words on a noisy light background; each line aims at one TokBench bin at 256
    (ratio = mean character width / longer side), 60% S, 25% M, 15% L. Boxes get a 2 px margin."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font_file = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
    fonts = {s: ImageFont.truetype(font_file, s) for s in range(10, 64)}
    rng = np.random.default_rng(seed)
    bounds = TEXT_BINS[256]
    root.mkdir(parents=True, exist_ok=True)
    meta, k = {}, 0
    for i in range(n_images):
        background = rng.integers(150, 230, 3)
        im = Image.fromarray(np.clip(background + rng.normal(0, 20, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        words, y = [], 4
        while True:
            b = rng.choice(3, p=(0.6, 0.25, 0.15))
            lo, hi = bounds[b], min(bounds[b + 1], 0.06)
            line, x, bottom = [], 4, y
            while True:
                text = WORDS[k % len(WORDS)]
                target = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))

                def char_ratio(size, text=text):
                    x0, _, x1, _ = draw.textbbox((0, 0), text, font=fonts[size])
                    return (x1 - x0) / len(text) / max(WIDTH, HEIGHT)

                size = min(fonts, key=lambda s: abs(char_ratio(s) - target))
                x0, y0, x1, y1 = draw.textbbox((x, y), text, font=fonts[size])
                if x1 > WIDTH - 4:
                    break
                line.append((text, size, (x, y), (x0, y0, x1, y1)))
                k += 1
                x, bottom = x1 + int(rng.integers(8, 20)), max(bottom, y1)
            if bottom > HEIGHT - 4 or not line:
                break
            for text, size, pos, (x0, y0, x1, y1) in line:
                draw.text(pos, text, font=fonts[size], fill=tuple(int(c) for c in rng.integers(40, 110, 3)))
                words.append(Word(text, (x0 - 2, y0 - 2, x1 + 2, y1 + 2), (x1 - x0) / len(text) / max(WIDTH, HEIGHT)))
            y = bottom + int(rng.integers(4, 10))
        path = root / f"words{i}.png"
        im.save(path)
        meta[path.stem] = tuple(words)
    return meta


class RenderedWords(Dataset):
    name = "check-rendered-words"
    modality = "image"
    license = "rendered by tests/test_check_text.py (DejaVu Sans, Bitstream Vera license)"

    def __init__(self, root: Path, meta: dict):
        self.root, self.meta = root, meta

    def load_items(self):
        return [Item(k, "image", self.root / f"{k}.png", words=v, source="rendered")
                for k, v in sorted(self.meta.items())]


@pytest.fixture(scope="module")
def word_runs(tmp_path_factory):
    import tokbench.metrics.text  # noqa: F401  (registers "text" if the package does not yet)

    root = tmp_path_factory.mktemp("check-words")
    meta = render_words(root / "images")
    if "check-rendered-words" in DATASETS:
        raise RuntimeError("dataset check-rendered-words registered twice")
    DATASETS.add("check-rendered-words", lambda: RenderedWords(root / "images", meta))
    list_suites()
    if "check-words" not in list_suites():
        register_suite(Suite("check-words", datasets=("check-rendered-words",), metrics=("text",), resolutions=(256,)))
    paths = {}
    for q in (50, 30):
        paths[q] = run(RunConfig(tokenizer=f"jpeg:quality={q}", suite="check-words", out=str(root / "reports"),
                                 quiet=True, cache_dir=str(root / "cache"), name=f"q{q}")).path
    return paths


def cells(result, column):
    return {c.bin: c for c in result.cells if c.metric.column == column}


def test_rendered_words_land_in_every_bin(word_runs):
    rows = load_report(word_runs[50]).rows
    words = rows[rows.level == "word"]
    counts = words["bin"].value_counts()
    assert counts.get("S", 0) >= 60 and counts.get("M", 0) >= 15 and counts.get("L", 0) >= 5, counts.to_dict()
    assert words["T-ACC"].notna().all()


def test_jpeg_50_to_30_regresses_on_text_metrics(word_runs, tmp_path):
    md = tmp_path / "check.md"
    res = C.check_reports(word_runs[50], word_runs[30])  # defaults: T-ACC, T-NED (the text metrics present)
    assert [c.metric.column for c in res.cells] == ["T-ACC"] * 4 + ["T-NED"] * 4
    acc = cells(res, "T-ACC")
    assert acc["S"].verdict == "regress" and acc["S"].ci_high < -1.0  # in percentage points
    assert acc["Mean"].verdict == "regress" and acc["Mean"].ci_high < 0 and res.exit_code == 1
    # the cells are the report's own numbers: display % = 100 x the rows' fractions (summary.csv keeps 6 digits)
    report = load_report(word_runs[50])
    words = report.rows[report.rows.level == "word"]
    row = report.summary[(report.summary.metric == "T-ACC") & (report.summary.level == "word")].iloc[0]
    for b in ("S", "M", "L"):
        assert acc[b].baseline == pytest.approx(100 * words.loc[words["bin"] == b, "T-ACC"].mean(), abs=1e-12)
    for b in ("S", "M", "L", "Mean"):
        assert acc[b].baseline == pytest.approx(100 * row[b], abs=1e-3)
    assert acc["Mean"].n == row["n_S"] + row["n_M"] + row["n_L"]
    assert acc["Mean"].diff == pytest.approx(np.mean([acc[b].diff for b in ("S", "M", "L")]))
    text = res.markdown()
    assert "| T-ACC (%) ↑ | 256 | word | S |" in text and "percentage points" in text
    args = _parse(["-b", str(word_runs[50]), "-c", str(word_runs[30]), "--markdown", str(md)])
    assert C.cmd_check(args) == 1 and md.read_text() == text


def test_text_loss_within_allowed_drop_passes(word_runs):
    res = C.check_reports(word_runs[50], word_runs[30], metrics=["T-ACC:max_drop=30", "T-NED:max_drop=30"])
    acc = cells(res, "T-ACC")
    assert acc["S"].ci_high < 0 and acc["S"].verdict == "pass" and res.exit_code == 0


def test_identical_text_runs_pass(word_runs):
    res = C.check_reports(word_runs[30], word_runs[30])
    assert res.exit_code == 0 and all(c.verdict == "pass" and c.diff == 0 for c in res.cells)


def test_text_face_suite_gates_text_metrics(tmp_path):
    """The built-in suite on its own data. Fails (on purpose) until the text metric is in the suite."""
    suite = get_suite("text-face")
    if "text" not in suite.metrics:
        pytest.fail(f"suite text-face has metrics {suite.metrics}: the 'text' metric is not wired in yet "
                    "(tokbench/builtin_suites.py and tokbench/metrics/__init__.py), so the gate cannot be shown "
                    "on T-ACC/T-NED of the suite's own data")
    # the rendered half of the suite's text: 12 images hold ~190 words inside the 256 bins
    paths = {q: run(RunConfig(tokenizer=f"jpeg:quality={q}", suite="text-face", resolutions=[256], limit=12,
                              datasets=["text-rendered"], out=str(tmp_path / "reports"), quiet=True,
                              cache_dir=str(tmp_path / "cache"), name=f"q{q}")).path for q in (50, 30)}
    res = C.check_reports(paths[50], paths[30], metrics=["T-ACC", "T-NED"])
    regressed = [c for c in res.regressions if c.metric.column in ("T-ACC", "T-NED")]
    assert regressed and all(c.ci_high < 0 for c in regressed), res.markdown()
    assert res.exit_code == 1


def _parse(argv):
    import argparse

    parser = argparse.ArgumentParser(prog="tokbench")
    C.add_check_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["check", *argv])
