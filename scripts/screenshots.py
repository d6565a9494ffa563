"""Screenshots of the leaderboard app for the README (docs/screenshots/), from real runs.

    python scripts/screenshots.py [--out docs/screenshots] [--work DIR]

Builds the leaderboard demo set (rendered words, the scikit-image astronaut), runs codecs and the resize
baseline through it with the real pipeline (offline protocol; one run under the tokbench protocol to sit
beside the published rows), starts ``streamlit run app.py`` on a free localhost port and photographs the
pages with the system's headless Chromium (Debian: apt-get install chromium chromium-driver).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tokbench.leaderboard.browser import (charts_drawn, chromium, loaded_images, save_full_page,  # noqa: E402
                                          streamlit_server, wait_for, wait_for_text)
from tokbench.leaderboard.demo import make_demo_reports  # noqa: E402

OFFLINE_RUNS = ("jpeg:quality=2", "jpeg:quality=5", "jpeg:quality=10", "jpeg:quality=30", "webp:quality=1",
                "webp:quality=5", "webp:quality=30", "resize")
TOKBENCH_RUNS = ("jpeg:quality=30",)
GALLERY_RUN = "jpeg:quality=5"
COMPARE_A = "jpeg:quality=10"  # compared with GALLERY_RUN


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="where the PNGs go")
    ap.add_argument("--work", default=None, help="folder for the demo data, reports and cache (default: a temp dir)")
    ap.add_argument("--width", type=int, default=1700, help="browser width in px")
    args = ap.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="tokbench-screenshots-"))
    out = Path(args.out)
    reports, data = work / "reports", work / "data"
    runs = make_demo_reports(reports, data, OFFLINE_RUNS, cache_dir=work / "cache")
    make_demo_reports(reports, data, TOKBENCH_RUNS, protocol="tokbench", cache_dir=work / "cache")
    gallery_run = runs[OFFLINE_RUNS.index(GALLERY_RUN)].name
    compare_a = runs[OFFLINE_RUNS.index(COMPARE_A)].name

    shots = []
    with streamlit_server(ROOT / "app.py", reports, log=work / "streamlit.log") as url, \
            chromium(width=args.width, height=1100) as driver:
        def shoot(query: str, name: str, *texts: str, charts: int = 0, images: int = 0) -> None:
            driver.get(f"{url}/?{query}")
            wait_for_text(driver, *texts, timeout=300)
            if charts:
                wait_for(driver, lambda d: charts_drawn(d) >= charts, what=f"{charts} charts")
            if images:
                wait_for(driver, lambda d: loaded_images(d, min_width=8) >= images, what=f"{images} images",
                         timeout=300)
            shots.append(save_full_page(driver, out / name, width=args.width))
            print(f"wrote {shots[-1]}")

        shoot("page=leaderboard&ranking=protocol+offline", "leaderboard.png", "Best by", "Download this ranking")
        shoot("page=leaderboard&ranking=protocol+tokbench+%C2%B7+image+256", "leaderboard_published.png",
              "Best by", "published")
        shoot("page=bins&ranking=protocol+offline", "per_bin.png", "Per-bin scores", charts=3)
        shoot("page=rd&ranking=protocol+offline", "rate_distortion.png", "Codecs are curves", charts=4)
        shoot(f"page=gallery&run={gallery_run}", "gallery.png", "Worst words", "Worst faces", "Re-run check",
              images=21)
        shoot("page=bins&ranking=protocol+tokbench", "per_bin_published.png", "Per-bin scores", charts=3)
        shoot(f"page=compare&a={compare_a}&b={gallery_run}", "compare.png", "Instances that changed most",
              images=3)
    print(f"demo data, reports and the server log are in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
