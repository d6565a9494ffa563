"""The leaderboard app's logic, through streamlit's AppTest, on reports made by real runs."""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from test_app_support import APP, demo  # noqa: F401  (session fixture)
from tokbench.leaderboard import board as B
from tokbench.leaderboard import catalog as C
from tokbench.leaderboard import gallery as G
from tokbench.leaderboard.charts import bin_values, rd_chart, rd_values
from tokbench.leaderboard.published import PUBLISHED_CSV, published_rows
from tokbench.leaderboard.ui import reports_dir
from tokbench.report import load_report

TIMEOUT = 180


@pytest.fixture(autouse=True)
def fresh_caches():
    """AppTest runs the script in this process: start every test with empty caches."""
    st.cache_data.clear()
    st.cache_resource.clear()
    C.read_run.cache_clear()
    yield


def app(reports: Path, monkeypatch, page: str | None = None, **query) -> AppTest:
    monkeypatch.setenv("TOKBENCH_REPORTS", str(reports))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if page:
        at.query_params["page"] = page
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info] + \
        [w.value for w in at.warning]
    return "\n".join(parts)


def summary_value(path: Path, level: str, metric: str, column: str) -> float:
    s = load_report(path).summary
    return float(s[(s["level"] == level) & (s["metric"] == metric)][column].iloc[0])


def has_text_metrics(demo) -> bool:
    s = load_report(next(iter(demo["paths"].values()))).summary
    return bool((s["metric"] == "T-ACC").any() and (s["metric"] == "F-Sim").any())


# --------------------------------------------------------------------------------------------- zero reports


def test_zero_reports_explain_the_run_command_and_still_show_published(tmp_path, monkeypatch):
    at = app(tmp_path / "nothing-here", monkeypatch)
    info = " ".join(i.value for i in at.info)
    assert "tokbench run --tokenizer" in info and "does not exist" in info
    table = at.dataframe[0].value
    assert set(table["source"]) == {C.PUBLISHED}
    pub = pd.read_csv(PUBLISHED_CSV)
    first = pub[(pub["setting"] == "image") & (pub["resolution"] == 256)]
    assert len(table) == len(first) == 20
    best = first.sort_values("t_acc_mean", ascending=False).iloc[0]
    assert table.iloc[0]["tokenizer"] == best["method"]
    assert table.iloc[0]["T-ACC Mean"] == pytest.approx(best["t_acc_mean"])
    for page in ("bins", "rd", "runs", "gallery"):  # every page copes with no runs
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    assert "No own runs yet" in texts(at)


def test_empty_existing_folder_says_it_holds_no_report(tmp_path, monkeypatch):
    (tmp_path / "reports").mkdir()
    at = app(tmp_path / "reports", monkeypatch)
    assert "holds no finished report yet" in " ".join(i.value for i in at.info)


# --------------------------------------------------------------------------------------------- leaderboard


def test_leaderboard_ranks_own_runs_by_their_reported_scores(demo, monkeypatch):
    at = app(demo["reports"], monkeypatch)
    table = at.dataframe[0].value
    assert set(table["source"]) == {C.OWN} and len(table) == len(demo["paths"])
    by = at.selectbox(key="rank_by").value
    metric, level = ("T-ACC", "word") if has_text_metrics(demo) else ("PSNR", "image")
    assert by == ("T-ACC Mean" if metric == "T-ACC" else "PSNR")
    expected = {}
    for tok, path in demo["paths"].items():
        v = summary_value(path, level, metric, "Mean" if metric == "T-ACC" else "all")
        expected[tok] = v * 100 if metric == "T-ACC" else v  # TokBench shows T-ACC in %
    got = dict(zip(table["tokenizer"], table[by]))
    assert got == pytest.approx(expected)
    assert list(table[by]) == sorted(table[by], reverse=True)
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    best = max(expected, key=expected.get)
    assert f"**Best by {by}:** {best}" in texts(at)

    at.selectbox(key="rank_by").set_value("bpp").run()  # lower is better: ascending
    table = at.dataframe[0].value
    bpp = {tok: summary_value(p, "image", "bpp", "all") for tok, p in demo["paths"].items()}
    assert list(table["tokenizer"]) == sorted(bpp, key=bpp.get)

    at.text_input(key="filter_text").set_value("webp").run()
    assert list(at.dataframe[0].value["tokenizer"]) == ["webp:quality=5"]


def test_t_acc_and_t_ned_are_percent_and_f_sim_a_fraction(demo, monkeypatch):
    if not has_text_metrics(demo):
        pytest.skip("text and face metrics are not registered in this checkout")
    at = app(demo["reports"], monkeypatch)
    table = at.dataframe[0].value.set_index("tokenizer")
    path = demo["paths"]["jpeg:quality=5"]
    for b in ("S", "M", "L", "Mean"):
        assert table.loc["jpeg:quality=5", f"T-NED {b}"] == pytest.approx(100 * summary_value(path, "word", "T-NED", b))
        assert table.loc["jpeg:quality=5", f"F-Sim {b}"] == pytest.approx(summary_value(path, "face", "F-Sim", b))


def tokbench_protocol_run(demo) -> Path:
    """A run under the tokbench protocol (its evaluators' weights are absent here: pixel metrics only)."""
    from tokbench.leaderboard.demo import make_demo_reports

    out = demo["root"] / "reports-tokbench"
    if not out.exists():
        make_demo_reports(out, demo["data"], ["jpeg:quality=10"], protocol="tokbench",
                          cache_dir=demo["root"] / "cache")
    return out


def mixed_reports(demo, tmp_path) -> Path:
    root = tmp_path / "mixed"
    root.mkdir()
    for p in list(demo["paths"].values()) + list(tokbench_protocol_run(demo).iterdir()):
        shutil.copytree(p, root / p.name)
    return root


def test_published_rows_join_only_the_tokbench_protocol(demo, tmp_path, monkeypatch):
    root = mixed_reports(demo, tmp_path)
    at = app(root, monkeypatch)
    seen = {}
    for label in at.sidebar.selectbox(key="ranking").options:
        at.sidebar.selectbox(key="ranking").set_value(label).run()
        assert not at.exception
        table = at.dataframe[0].value
        seen[label] = table
        if "protocol offline" in label:
            assert (table["source"] == C.OWN).all(), "published rows must never join the offline protocol"
            assert set(table["tokenizer"]) == set(demo["paths"])
        else:
            assert "protocol tokbench" in label
            assert not set(table[table["source"] == C.OWN]["tokenizer"]) & set(demo["paths"]) - {"jpeg:quality=10"}
    mixed = [lab for lab, t in seen.items() if "protocol tokbench" in lab and (t["source"] == C.OWN).any()]
    assert len(mixed) == 1
    table = seen[mixed[0]]
    own = table[table["source"] == C.OWN]
    assert list(own["tokenizer"]) == ["jpeg:quality=10"] and list(own["run"]) == [
        next(tokbench_protocol_run(demo).iterdir()).name]
    assert (table["source"] == C.PUBLISHED).sum() == 20  # TokBench image 256 rows
    # the own tokbench run was made without the published evaluators: its T-ACC is empty, never borrowed
    assert own["T-ACC Mean"].isna().all() and own["rank"].isna().all()


def test_rankings_never_mix_protocols_or_evaluators(demo, tmp_path):
    root = mixed_reports(demo, tmp_path)
    cat = C.build_catalog(root, C.report_signature(root), published_rows())
    ranks = B.rankings(cat.board)
    for r in ranks:
        rows = B.ranking_rows(cat.board, r)
        own = rows[rows["source"] == C.OWN]
        assert set(own["protocol"]) <= {r.protocol} and set(own["evaluators"]) <= {r.evaluators}
        assert set(rows["resolution"]) == {r.resolution}
        if r.protocol != "tokbench":
            assert (rows["source"] == C.OWN).all()
    # published video and other resolutions stay browsable on their own
    assert {(r.modality, r.resolution) for r in ranks if r.own == 0} == \
        {("image", 512), ("image", 1024), ("video", 256), ("video", 480)}


# --------------------------------------------------------------------------------------------- charts


def test_per_bin_charts_for_t_acc_t_ned_and_f_sim(demo, monkeypatch):
    if not has_text_metrics(demo):
        pytest.skip("text and face metrics are not registered in this checkout")
    at = app(demo["reports"], monkeypatch, page="bins")
    charts = at.get("vega_lite_chart")
    titles = [json.loads(c.proto.spec).get("title") for c in charts]
    assert titles == ["T-ACC (%) per scale bin (higher is better)", "T-NED (%) per scale bin (higher is better)",
                      "F-Sim (0-1) per scale bin (higher is better)"]
    # the bars carry the reported per-bin numbers
    cat = C.build_catalog(demo["reports"], C.report_signature(demo["reports"]))
    values = bin_values(cat.own, "F-Sim")
    path = demo["paths"]["webp:quality=5"]
    for b in ("S", "M", "L"):
        v = values[(values["tokenizer"] == "webp:quality=5") & (values["bin"] == b)]["value"]
        assert float(v.iloc[0]) == pytest.approx(summary_value(path, "face", "F-Sim", b))


def test_rate_distortion_codecs_are_curves_ordered_by_bpp(demo, monkeypatch):
    at = app(demo["reports"], monkeypatch, page="rd")
    charts = at.get("vega_lite_chart")
    assert len(charts) == len(at.multiselect(key="rd_metrics").value) >= 2
    cat = C.build_catalog(demo["reports"], C.report_signature(demo["reports"]))
    data = rd_values(cat.own, "PSNR")
    jpeg = data[data["curve"] == "jpeg"]
    assert list(jpeg["tokenizer"]) == sorted(jpeg["tokenizer"], key=lambda t: float(
        cat.own.set_index("tokenizer").loc[t, "bpp"]))
    assert len(jpeg) == 2 and list(jpeg["rate"]) == sorted(jpeg["rate"])
    psnr = {t: summary_value(p, "image", "PSNR", "all") for t, p in demo["paths"].items()}
    assert dict(zip(data["tokenizer"], data["value"])) == pytest.approx(psnr)
    spec = rd_chart(cat.own, "PSNR").to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["line", "point", "text"]


def test_learned_tokenizers_are_points_not_curves():
    rows = pd.DataFrame({"source": [C.OWN] * 3, "tokenizer": ["jpeg:quality=5", "jpeg:quality=9", "omni"],
                         "name": ["jpeg", "jpeg", "omni"], "kind": ["codec", "codec", "discrete"],
                         "bpp": [0.2, 0.4, 0.3], "PSNR": [24.0, 27.0, 26.0], "run": ["a", "b", "c"]})
    data = rd_values(rows, "PSNR")
    assert list(data["curve"]) == ["jpeg", "jpeg", "omni"]
    spec = rd_chart(rows, "PSNR").to_dict()
    assert spec["layer"][0]["transform"] == [{"filter": "(datum.kind === 'codec')"}]


# --------------------------------------------------------------------------------------------- run page


def test_run_page_shows_the_manifest(demo, monkeypatch):
    path = demo["paths"]["jpeg:quality=10"]
    at = app(demo["reports"], monkeypatch, page="runs", run=path.name)
    facts = at.table[0].value
    manifest = load_report(path).manifest
    assert facts.loc["tokenizer", "value"] == "jpeg:quality=10"
    assert facts.loc["protocol", "value"] == "offline"
    assert facts.loc["git commit", "value"] == str(manifest["git_commit"] or "-")
    shown = [json.loads(j.proto.body) for j in at.json]
    full = [s for s in shown if isinstance(s, dict) and "packages" in s]  # the whole manifest, as written
    assert len(full) == 1 and full[0]["tokenizer"]["label"] == "jpeg:quality=10"
    assert full[0]["datasets"] == manifest["datasets"] and full[0]["timings"] == manifest["timings"]


# --------------------------------------------------------------------------------------------- gallery


def test_gallery_shows_the_worst_words_and_faces_with_reconstructions(demo, monkeypatch):
    if not has_text_metrics(demo):
        pytest.skip("text and face metrics are not registered in this checkout")
    path = demo["paths"]["jpeg:quality=5"]
    at = app(demo["reports"], monkeypatch, page="gallery", run=path.name)
    rows = load_report(path).rows
    rows = rows[rows["bin"] != ""]  # by default the gallery shows instances inside the TokBench bins
    words = rows[(rows["level"] == "word") & rows["T-NED"].notna()]
    faces = rows[rows["level"] == "face"]
    n = at.slider(key="gallery_n").value
    shown = min(n, len(words)) + min(n, len(faces))
    assert len(at.image) == 3 * shown  # original, tokenizer input and reconstruction of each instance
    md = [m.value for m in at.markdown]
    worst = words[words["T-NED"] == words["T-NED"].min()]
    assert any(f"gt **{w.gt}** · pred **{w.pred or '∅'}**" in md[0] for w in worst.itertuples())
    worst_face = faces["F-Sim"].min()
    assert any(f"F-Sim **{worst_face:.3f}**" in m for m in md)
    assert "reproduce the report's PSNR (largest difference 0.0000 dB" in texts(at)
    # the crops come from the annotated regions of the reloaded item
    item = worst.iloc[0]
    it = G.find_item(G.find_dataset(load_report(path).manifest, item["dataset"]), item["item"])
    assert G.instance_region(it.words, it.faces, "word", int(item["instance"]))[2] == item["gt"]


def test_gallery_explains_a_tokenizer_it_cannot_rebuild(demo, tmp_path, monkeypatch):
    if not has_text_metrics(demo):
        pytest.skip("text and face metrics are not registered in this checkout")
    src = demo["paths"]["jpeg:quality=5"]
    root = tmp_path / "reports"
    dst = root / "omni-run"
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["tokenizer"]["label"] = manifest["tokenizer"]["name"] = "omni-vq-ffhq"  # weights absent here
    manifest["config"]["tokenizer"] = "omni-vq-ffhq"
    (dst / "manifest.json").write_text(json.dumps(manifest))
    at = app(root, monkeypatch, page="gallery", run="omni-run")
    warning = " ".join(w.value for w in at.warning)
    assert "Cannot rebuild tokenizer `omni-vq-ffhq`" in warning and "MissingWeightsError" in warning
    rows = load_report(src).rows
    rows = rows[rows["bin"] != ""]
    n = at.slider(key="gallery_n").value
    shown = min(n, int(rows["T-NED"].notna().sum())) + min(n, int((rows["level"] == "face").sum()))
    assert len(at.image) == shown  # originals only
    assert sum(c.value == "reconstruction unavailable" for c in at.caption) == shown


def test_gallery_of_a_pixel_only_run_says_why_it_is_empty(demo, tmp_path, monkeypatch):
    root = tokbench_protocol_run(demo)
    at = app(root, monkeypatch, page="gallery")
    assert "no scored words or faces" in " ".join(i.value for i in at.info)


def test_worst_instances_skip_unscored_words():
    rows = pd.DataFrame({"level": ["word"] * 4 + ["image"], "resolution": [256] * 5, "dataset": ["d"] * 5,
                         "item": ["a", "a", "b", "b", "a"], "instance": [0, 1, 0, 1, 0],
                         "T-NED": [0.5, np.nan, 0.2, 1.0, np.nan], "T-ACC": [0.0, np.nan, 0.0, 1.0, np.nan]})
    worst = G.worst_instances(rows, "word", G.TEXT_ORDER, 2)
    assert list(zip(worst["item"], worst["instance"])) == [("b", 0), ("a", 0)]


def test_crop_is_clamped_and_enlarged_with_visible_pixels():
    frames = np.arange(2 * 10 * 20 * 3, dtype=np.uint8).reshape(2, 10, 20, 3)
    c = G.crop(frames, 1, (15.0, 6.0, 25.0, 12.0), margin=0.0, min_margin=1)
    np.testing.assert_array_equal(c, frames[1, 5:10, 14:20])
    big = G.enlarge(c, 20)
    assert big.shape == (20, 24, 3) and (big[:4, :4] == c[0, 0]).all()


# --------------------------------------------------------------------------------------------- scale, cache


def test_hundreds_of_reports_are_read_once(demo, tmp_path, monkeypatch):
    root = tmp_path / "many"
    src = demo["paths"]["jpeg:quality=10"]
    for i in range(240):
        shutil.copytree(src, root / f"run-{i:03d}")
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{ not json")
    before = C.READS["count"]
    t0 = time.perf_counter()
    at = app(root, monkeypatch)
    first = time.perf_counter() - t0
    assert C.READS["count"] - before == 241
    assert len(at.dataframe[0].value) == 240
    assert "1 report(s) could not be read" in " ".join(w.value for w in at.warning)  # in the main area

    before = C.READS["count"]
    t0 = time.perf_counter()
    at.selectbox(key="rank_by").set_value("bpp").run()
    again = time.perf_counter() - t0
    at.sidebar.radio(key="page").set_value("rd").run()
    at.sidebar.radio(key="page").set_value("leaderboard").run()
    assert not at.exception
    assert C.READS["count"] == before, "an interaction re-read reports"

    manifest = root / "run-007" / "manifest.json"
    os.utime(manifest, ns=(time.time_ns(), time.time_ns() + 10**9))  # the run was re-written
    at.run()
    assert C.READS["count"] == before + 1
    print(f"240 reports: first load {first:.2f} s, an interaction {again:.2f} s")
    assert again < first


# --------------------------------------------------------------------------------------------- pure parts


def test_reports_option_beats_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKBENCH_REPORTS", str(tmp_path / "env"))
    assert reports_dir(["--reports", str(tmp_path / "opt")]) == tmp_path / "opt"
    assert reports_dir(["-q", "tests/test_app.py"]) == tmp_path / "env"
    monkeypatch.delenv("TOKBENCH_REPORTS")
    assert reports_dir([]) == Path("reports")


def test_published_rows_keep_the_published_numbers():
    pub = published_rows()
    raw = pd.read_csv(PUBLISHED_CSV)
    assert len(pub) == len(raw) == 70
    assert (pub["source"] == C.PUBLISHED).all() and (pub["protocol"] == "tokbench").all()
    flux = pub[(pub["tokenizer"] == "FLUX.1-dev") & (pub["resolution"] == 256)].iloc[0]
    ref = raw[(raw["method"] == "FLUX.1-dev") & (raw["resolution"] == 256)].iloc[0]
    assert flux["T-ACC Mean"] == ref["t_acc_mean"] and flux["F-Sim S"] == ref["f_sim_s"]
    # the Means agree with the bins (rounding of the published table)
    for m in ("T-ACC", "T-NED"):
        mean = pub[[f"{m} S", f"{m} M", f"{m} L"]].mean(axis=1)
        assert (mean - pub[f"{m} Mean"]).abs().max() <= 0.011


def test_rank_puts_rows_without_a_value_last_and_unranked():
    rows = pd.DataFrame({"tokenizer": list("abc"), "source": [C.OWN] * 3, "T-ACC Mean": [10.0, math.nan, 30.0]})
    out = B.rank(rows, "T-ACC Mean")
    assert list(out["tokenizer"]) == ["c", "a", "b"]
    assert out["rank"].tolist()[:2] == [1, 2] and pd.isna(out["rank"].iloc[2])
    with pytest.raises(KeyError, match="no column"):
        B.rank(rows, "PSNR")


def test_direction_of_columns():
    assert C.lower_is_better("bpp") and C.lower_is_better("LPIPS") and C.lower_is_better("rFID")
    assert C.lower_is_better("F-L2 Mean") and not C.lower_is_better("F-Sim Mean")
    assert not C.lower_is_better("T-ACC S") and not C.lower_is_better("PSNR")


def test_evaluator_set_names_engines_and_versions():
    manifest = {"metrics": {"psnr": {"name": "psnr", "version": "1"},
                            "text": {"ocr": {"engine": "rapidocr", "version": "rapidocr 3.10.0; onnxruntime 1.32"}},
                            "face": {"face_backend": {"backend": "dlib", "version": "dlib 20.0.1 (dlib-bin 20)"}}}}
    full, short = C.evaluator_set(manifest)
    assert full == "dlib (dlib 20.0.1 (dlib-bin 20)) + rapidocr (rapidocr 3.10.0; onnxruntime 1.32)"
    assert short == "dlib 20.0.1 + rapidocr 3.10.0"
    assert C.evaluator_set({"metrics": {"psnr": {"version": "1"}}})[0] == "pixel metrics only"


# --------------------------------------------------------------------------------------------- app v2


def copied_reports(demo, tmp_path, extra=()) -> tuple[Path, dict]:
    """The demo's runs copied under ``tmp_path/reports`` (so they can be damaged or duplicated here)."""
    root = tmp_path / "reports"
    paths = {}
    for tok, p in demo["paths"].items():
        shutil.copytree(p, root / p.name)
        paths[tok] = root / p.name
    for name, tok in extra:
        shutil.copytree(demo["paths"][tok], root / name)
    return root, paths


def test_a_damaged_report_is_named_on_every_page_and_never_ranks(demo, tmp_path, monkeypatch):
    root, paths = copied_reports(demo, tmp_path, [("broken-run", "jpeg:quality=5")])
    (root / "broken-run" / "rows.parquet").write_bytes(b"not a parquet file")
    (root / "empty-folder").mkdir()
    at = app(root, monkeypatch)
    assert "broken-run" not in set(at.dataframe[0].value["run"]) and len(at.dataframe[0].value) == len(paths)
    for page in ("leaderboard", "bins", "rd", "runs", "gallery", "compare"):
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        warning = " ".join(w.value for w in at.warning)
        assert "`broken-run`: rows.parquet unreadable" in warning, page


def test_runs_with_the_same_label_stay_distinct(demo, tmp_path, monkeypatch):
    if not has_text_metrics(demo):
        pytest.skip("text and face metrics are not registered in this checkout")
    root, paths = copied_reports(demo, tmp_path, [("again", "jpeg:quality=5")])
    at = app(root, monkeypatch)
    table = at.dataframe[0].value
    twins = table[table["tokenizer"].str.startswith("jpeg:quality=5")]
    assert sorted(twins["tokenizer"]) == sorted(["jpeg:quality=5 · again",
                                                 f"jpeg:quality=5 · {paths['jpeg:quality=5'].name}"])
    assert (twins["T-ACC Mean"] <= 100).all()  # never summed
    cat = C.build_catalog(root, C.report_signature(root))
    rank = B.rankings(cat.board)[0]
    bars = bin_values(B.ranking_rows(cat.board, rank), "T-ACC")
    assert bars.groupby(["tokenizer", "bin"]).size().max() == 1 and bars["value"].max() <= 100
    assert bars["tokenizer"].nunique() == len(paths) + 1


def test_every_binned_score_has_its_count_and_the_csv_says_what_produced_it(demo, monkeypatch):
    if not has_text_metrics(demo):
        pytest.skip("text and face metrics are not registered in this checkout")
    at = app(demo["reports"], monkeypatch)
    table = at.dataframe[0].value.set_index("tokenizer")
    path = demo["paths"]["jpeg:quality=5"]
    s = load_report(path).summary
    acc = s[(s["level"] == "word") & (s["metric"] == "T-ACC")].iloc[0]
    for b in ("S", "M", "L"):
        assert table.loc["jpeg:quality=5", f"T-ACC {b} n"] == acc[f"n_{b}"]
    assert table.loc["jpeg:quality=5", "T-ACC Mean n"] == acc["n_binned"]
    cols = list(at.dataframe[0].value.columns)
    assert cols[:4] == ["rank", "tokenizer", "T-ACC Mean", "T-ACC Mean n"]  # the ranked column beside the name
    assert "details" in cols and "gallery" in cols
    from tokbench.leaderboard.ui import ranking_csv

    cat = C.build_catalog(demo["reports"], C.report_signature(demo["reports"]))
    ranking = B.rankings(cat.board)[0]
    shown = at.dataframe[0].value
    csv = pd.read_csv(__import__("io").BytesIO(ranking_csv(shown, ranking, ["T-ACC Mean", "PSNR"])))
    assert set(csv["protocol"]) == {"offline"} and set(csv["resolution"]) == {256}
    assert set(csv["evaluators"]) == {ranking.evaluators} and "details" not in csv.columns
    assert all(round(v, 2) == v for v in csv["T-ACC Mean"].dropna())
    assert list(B.metric_columns(B.ranking_rows(cat.board, ranking))[:4]) == \
        ["T-ACC S", "T-ACC M", "T-ACC L", "T-ACC Mean"]
    rest = [c for c in B.metric_columns(B.ranking_rows(cat.board, ranking)) if c.startswith("F-L2")]
    assert rest == ["F-L2 S", "F-L2 M", "F-L2 L", "F-L2 Mean"][:len(rest)] or rest == ["F-L2 Mean"]


def test_compare_page_uses_the_checks_paired_bootstrap(demo, monkeypatch):
    if not has_text_metrics(demo):
        pytest.skip("text and face metrics are not registered in this checkout")
    from tokbench.check import check_reports, load_side

    a, b = demo["paths"]["jpeg:quality=10"], demo["paths"]["jpeg:quality=5"]
    at = app(demo["reports"], monkeypatch, page="compare", a=a.name, b=b.name)
    cells = at.dataframe[0].value
    expected = check_reports(a, b, ["T-ACC", "T-NED", "F-Sim", "PSNR", "SSIM"]).cells
    assert list(cells["bin"]) == [c.bin for c in expected] and list(cells["n"]) == [c.n for c in expected]
    for got, low, c in zip(cells["B - A"], cells["CI low"], expected):
        if not math.isnan(c.ci_low):
            assert (got, low) == (pytest.approx(round(c.diff, 3)), pytest.approx(round(c.ci_low, 3)))
    n = at.slider(key="compare_n").value
    changed = G.changed_instances(load_side(a), load_side(b), "T-ACC", n)
    assert len(changed) > 0 and len(at.image) == 3 * len(changed)  # original, A and B of each instance
    md = "\n".join(m.value for m in at.markdown)
    assert "A: gt" in md and "B: gt" in md


def test_gallery_filters_and_nothing_failed():
    rows = pd.DataFrame({"level": ["word"] * 4, "resolution": [256] * 4, "dataset": ["d", "d", "e", "e"],
                         "item": ["a", "a", "b", "b"], "instance": [0, 1, 0, 1], "bin": ["", "S", "M", "S"],
                         "gt": ["tiny", "Hello", "world", "Help"],
                         "T-NED": [0.1, 0.5, 0.9, 1.0], "T-ACC": [0.0, 0.0, 0.0, 1.0]})
    worst = G.worst_instances(rows, "word", G.TEXT_ORDER, 4, bins=["S", "M", "L"])
    assert list(worst["gt"]) == ["Hello", "world", "Help"]  # the below-bin word is not the default worst
    assert list(G.worst_instances(rows, "word", G.TEXT_ORDER, 4, bins=["S"])["gt"]) == ["Hello", "Help"]
    assert list(G.worst_instances(rows, "word", G.TEXT_ORDER, 4, dataset="e")["gt"]) == ["world", "Help"]
    assert list(G.worst_instances(rows, "word", G.TEXT_ORDER, 4, text="hel")["gt"]) == ["Hello", "Help"]
    assert list(G.worst_instances(rows, "word", G.TEXT_ORDER, 4, item="b", bins=[""])["gt"]) == []
    assert not G.nothing_failed(worst, "T-ACC")
    assert G.nothing_failed(G.worst_instances(rows, "word", G.TEXT_ORDER, 4, text="help"), "T-ACC")


def test_evaluators_named_only_when_they_scored_something():
    manifest = {"metrics": {"text": {"ocr": {"engine": "rapidocr", "version": "rapidocr 3.10.0"}},
                            "face": {"face_backend": {"backend": "dlib", "version": "dlib 20.0.1"}}}}
    assert C.evaluator_set(manifest, {"image"})[0] == "pixel metrics only"  # e.g. a pixels-only video run
    assert C.evaluator_set(manifest, {"image", "word"})[1] == "rapidocr 3.10.0"


def test_rate_distortion_labels_settings_and_leaves_out_the_identity():
    rows = pd.DataFrame({"source": [C.OWN] * 3, "tokenizer": ["jpeg:quality=5", "jpeg:quality=50", "identity"],
                         "name": ["jpeg", "jpeg", "identity"], "kind": ["codec", "codec", "baseline"],
                         "bpp": [0.3, 1.2, 24.0], "PSNR": [24.0, 31.0, 100.0], "run": ["a", "b", "c"]})
    data = rd_values(rows, "PSNR")
    assert list(data["setting"]) == ["quality=5", "quality=50"] and "identity" not in set(data["name"])
