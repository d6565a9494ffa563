"""End to end: ``streamlit run app.py`` on a free localhost port, driven by the system's headless Chromium.

Never skipped: a machine without Debian's chromium and chromium-driver (or without selenium) fails this test
with the install command, since CI installs them and must run it for real.
"""
from __future__ import annotations

import json
import shutil

import pytest

from test_app_support import APP, demo  # noqa: F401  (session fixture)
from tokbench.leaderboard.browser import (BrowserUnavailable, charts_drawn, chromium, find_chromium, loaded_images,
                                          page_text, save_full_page, streamlit_server, wait_for, wait_for_text)
from tokbench.report import load_report


def require_browser() -> None:
    try:
        find_chromium()
        import selenium  # noqa: F401
    except (BrowserUnavailable, ImportError) as e:
        pytest.fail(f"the browser test needs Chromium, chromedriver and selenium: {e}", pytrace=False)


def grid_text(driver) -> str:
    """Cell text of the leaderboard table (the data grid keeps an accessible copy of its visible cells)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('[data-testid=\"stDataFrame\"] td, "
        "[data-testid=\"stDataFrame\"] th')).map(e => e.innerText).join('\\n');")


def js_number(v: float) -> str:
    """How the browser prints a float: shortest round-trip digits (as Python's repr), integers bare."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def test_app_in_headless_chromium(demo, tmp_path):
    require_browser()
    paths = demo["paths"]
    summaries = {tok: load_report(p).summary for tok, p in paths.items()}
    text_scored = all((s["metric"] == "T-ACC").any() for s in summaries.values())
    if text_scored:
        by, level, metric, column, scale = "T-ACC Mean", "word", "T-ACC", "Mean", 100.0
    else:
        by, level, metric, column, scale = "PSNR", "image", "PSNR", "all", 1.0
    value = {tok: scale * float(s[(s["level"] == level) & (s["metric"] == metric)][column].iloc[0])
             for tok, s in summaries.items()}
    best = max(value, key=value.get)

    # the demo's real runs plus a damaged one (its rows.parquet overwritten) and an empty folder
    reports = tmp_path / "reports"
    for p in paths.values():
        shutil.copytree(p, reports / p.name)
    broken = reports / "broken-run"
    shutil.copytree(paths["jpeg:quality=5"], broken)
    (broken / "rows.parquet").write_bytes(b"not a parquet file")
    (reports / "empty-folder").mkdir()
    paths = {tok: reports / p.name for tok, p in paths.items()}

    with streamlit_server(APP, reports, log=tmp_path / "streamlit.log") as url, chromium() as driver:
        # leaderboard: the values rendered come from the reports the test made; the damaged run is named
        driver.get(url)
        text = wait_for_text(driver, f"Best by {by}:")
        assert "1 report(s) could not be read" in text and "broken-run: rows.parquet unreadable" in text
        assert f"Best by {by}: {best} with {value[best]:.2f}" in text
        assert f"{len(paths)} rows, {len(paths)} own, 0 published" in text
        grid = wait_for(driver, lambda d: (lambda g: g if all(t in g for t in paths) else None)(grid_text(d)),
                        what="the leaderboard table's cells").split("\n")
        for tok, v in value.items():  # the ranking column is on screen; its cells hold the values unformatted
            assert js_number(v) in grid, (tok, v, grid)
        shot = save_full_page(driver, tmp_path / "leaderboard.png")
        assert shot.stat().st_size > 20_000

        assert "published" not in grid  # published rows never join the offline ranking
        assert "broken-run" not in grid  # the damaged run does not rank

        # the published TokBench leaderboard: its own ranking, rows visible, and its per-bin page
        driver.get(f"{url}/?page=leaderboard&ranking=protocol+tokbench")
        wait_for_text(driver, "Leaderboard · image 256 px · protocol tokbench", "Best by")
        grid = wait_for(driver, lambda d: (lambda g: g if "TiTok" in g else None)(grid_text(d)),
                        what="published rows in the table")  # TiTok and Resize are published rows only
        assert "Resize" in grid and "Rank by" in page_text(driver)
        driver.get(f"{url}/?page=bins&ranking=protocol+tokbench")
        wait_for_text(driver, "Per-bin scores", "Published bars are drawn lighter")
        assert wait_for(driver, charts_drawn, what="per-bin charts of the published rows") >= 3

        # rate-distortion: the charts draw
        driver.get(f"{url}/?page=rd")
        wait_for_text(driver, "Rate-distortion", "Codecs are curves")
        assert wait_for(driver, charts_drawn, what="rate-distortion charts") >= 2
        save_full_page(driver, tmp_path / "rate_distortion.png")

        # run details: the manifest's facts as text
        run = paths["jpeg:quality=5"]
        manifest = json.loads((run / "manifest.json").read_text())
        driver.get(f"{url}/?page=runs&run={run.name}")
        text = wait_for_text(driver, "Run details", manifest["date"])
        assert manifest["tokenizer"]["label"] in text and manifest["suite"] in text

        if not text_scored:
            return
        # failure gallery: worst word with its prediction, and every crop loaded as a real image
        rows = load_report(run).rows
        words = rows[(rows["level"] == "word") & rows["T-NED"].notna()].sort_values(["T-NED", "T-ACC"])
        faces = rows[rows["level"] == "face"]
        driver.get(f"{url}/?page=gallery&run={run.name}")
        text = wait_for_text(driver, "Worst words", "Worst faces", "Re-run check", timeout=180)
        worst = words.iloc[0]
        assert f"gt {worst['gt']} · pred {worst['pred'] or '∅'}" in text
        assert f"F-Sim {faces['F-Sim'].min():.3f}" in text
        shown = min(4, len(words)) + min(4, len(faces))
        wait_for(driver, lambda d: loaded_images(d, min_width=8) >= 2 * shown, what=f"{2 * shown} gallery images")
        save_full_page(driver, tmp_path / "gallery.png")
        assert "Traceback" not in page_text(driver)
        # default: only instances inside the TokBench bins; the bin filter narrows to one
        shown_bins = [line.split(" · bin ")[1].split(" ")[0] for line in text.splitlines() if " · bin " in line]
        assert shown_bins and "below" not in shown_bins
        driver.get(f"{url}/?page=gallery&run={run.name}&bins=S")
        text = wait_for_text(driver, "Worst words", "Re-run check", timeout=180)
        only = {line.split(" · bin ")[1].split(" ")[0] for line in text.splitlines() if " · bin " in line}
        assert only == {"S"}, only

        # comparison of two real runs: tokbench check's cells and the same word under A and B
        a, b = paths["jpeg:quality=10"], paths["jpeg:quality=5"]
        driver.get(f"{url}/?page=compare&a={a.name}&b={b.name}")
        text = wait_for_text(driver, "Compare two runs", "paired bootstrap", "Instances that changed most",
                             "A: gt", "B: gt", timeout=180)
        from tokbench.check import check_reports

        cells = check_reports(a, b, ["T-ACC", "T-NED", "F-Sim", "PSNR", "SSIM"]).cells
        mean = next(c for c in cells if c.metric.column == "T-ACC" and c.bin == "Mean")
        want = (js_number(round(mean.diff, 3)), js_number(round(mean.ci_low, 3)))
        # the grid fills after the page text: wait for its cells rather than read it once
        grid = wait_for(driver, lambda d: (lambda g: g if all(t in g for t in want) else None)(grid_text(d)),
                        what=f"comparison grid with {want}")
        assert all(t in grid for t in want)
        wait_for(driver, lambda d: loaded_images(d, min_width=8) >= 3, what="original, A and B crops")
        save_full_page(driver, tmp_path / "compare.png")
        assert "Traceback" not in page_text(driver)

    # an empty reports folder: how to make a report, and the published leaderboard meanwhile
    empty = tmp_path / "no-reports"
    empty.mkdir()
    with streamlit_server(APP, empty, log=tmp_path / "streamlit-empty.log") as url, chromium() as driver:
        driver.get(url)
        wait_for_text(driver, "holds no finished report yet", "tokbench run --tokenizer", "Best by")
        assert "TiTok" in wait_for(driver, lambda d: (lambda g: g if "TiTok" in g else None)(grid_text(d)),
                                   what="published rows")


def test_a_missing_browser_fails_with_the_install_command(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium chromium-driver"):
        require_browser()
