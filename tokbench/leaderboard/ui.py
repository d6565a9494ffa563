"""The Streamlit pages (``app.py`` only calls ``main``). Data work lives in catalog / board / charts / gallery.

Caching: the report index is ``st.cache_data`` keyed on every finished report's manifest mtime, so an
interaction that changes no report re-reads nothing; rows, datasets, tokenizers and reconstructions for the
gallery are cached per run / item the same way.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

import pandas as pd
import streamlit as st

from tokbench.leaderboard import board as B
from tokbench.leaderboard import gallery as G
from tokbench.leaderboard.catalog import (FIDELITY_METRICS, N_SUFFIX, OWN, PERCENT_METRICS, PUBLISHED, UNITS, Catalog,
                                          build_catalog, evaluator_set, metric_of, read_run, report_signature,
                                          unfinished_folders)
from tokbench.leaderboard.charts import bin_chart, rd_chart
from tokbench.leaderboard.published import PUBLISHED_CSV, published_rows

PAGES = {"leaderboard": "Leaderboard", "bins": "Per-bin charts", "rd": "Rate-distortion", "runs": "Run details",
         "gallery": "Failure gallery", "compare": "Compare two runs"}
RUN_COMMAND = "tokbench run --tokenizer jpeg:quality=50 --suite text-face --resolution 256"
PUBLISHED_FILL = "background-color: rgba(255, 170, 0, 0.14)"
RD_PREFERENCE = ("T-ACC Mean", "T-NED Mean", "F-Sim Mean", "PSNR", "SSIM", "LPIPS")


def reports_dir(argv: Optional[list[str]] = None) -> Path:
    """``--reports DIR`` (after ``--`` on the streamlit command line), else $TOKBENCH_REPORTS, else reports/."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--reports")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return Path(args.reports or os.environ.get("TOKBENCH_REPORTS") or "reports").expanduser()


# ------------------------------------------------------------------------------------------------ caches


@st.cache_data(show_spinner="Reading reports...", max_entries=4)
def load_catalog(root: str, signature: tuple) -> Catalog:
    return build_catalog(root, signature, published_rows())


@st.cache_data(show_spinner="Reading rows...", max_entries=16)
def load_rows(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_parquet(Path(path) / "rows.parquet")


def rows_or_error(rid: str, path: str, mtime_ns: int) -> Optional[pd.DataFrame]:
    """The run's rows, or None after saying in the main area which report is damaged and why."""
    try:
        return load_rows(path, mtime_ns)
    except Exception as e:  # noqa: BLE001 - a damaged file must not take the page down
        st.error(f"Report `{rid}`: rows.parquet cannot be read ({type(e).__name__}: {str(e)[:200]}); "
                 "the other runs are unaffected. Re-run it to rebuild the file.")
        return None


@st.cache_resource(max_entries=8, show_spinner="Reading runs...")
def cached_side(path: str, mtime_ns: int):
    from tokbench.check import load_side

    return load_side(path)


@st.cache_data(max_entries=16, show_spinner="Paired bootstrap (as tokbench check)...")
def compare_runs(path_a: str, mtime_a: int, path_b: str, mtime_b: int) -> dict:
    """``tokbench check``'s comparison of B against A: cells with paired bootstrap intervals, or why not."""
    from tokbench.check import CheckMismatchError, check_reports

    from tokbench.check import PIXEL_DEFAULTS, TEXT_FACE_DEFAULTS

    try:
        a, b = cached_side(path_a, mtime_a), cached_side(path_b, mtime_b)
        metrics = [m for m in (*TEXT_FACE_DEFAULTS, *PIXEL_DEFAULTS)
                   if all(m in side.rows.columns and side.rows[m].notna().any() for side in (a, b))]
        result = check_reports(a, b, metrics or None)
    except CheckMismatchError as e:
        return {"error": "not comparable: " + "; ".join(e.differences)}
    except Exception as e:  # noqa: BLE001 - e.g. no metric with values in both: shown as is
        return {"error": f"{type(e).__name__}: {e}"}
    cells = pd.DataFrame([{"metric": c.metric.label, "column": c.metric.column, "resolution": c.resolution,
                           "level": c.level, "bin": c.bin, "n": c.n, "A": c.baseline, "B": c.candidate,
                           "B - A": c.diff, "CI low": c.ci_low, "CI high": c.ci_high,
                           "verdict": {"regress": "worse", "improve": "better"}.get(c.verdict, c.verdict),
                           "note": c.note} for c in result.cells])
    return {"cells": cells, "notes": list(result.notes), "confidence": result.confidence,
            "resamples": result.n_resamples, "seed": result.seed}


@st.cache_data(max_entries=16, show_spinner="Finding the instances that changed most...")
def changed_most(path_a: str, mtime_a: int, path_b: str, mtime_b: int, column: str, n: int) -> pd.DataFrame:
    return G.changed_instances(cached_side(path_a, mtime_a), cached_side(path_b, mtime_b), column, n)


@st.cache_resource(max_entries=8, show_spinner="Opening dataset...")
def cached_dataset(spec: str):
    return G.open_dataset(spec)


@st.cache_resource(max_entries=2, show_spinner="Building tokenizer...")
def cached_tokenizer(label: str, checkpoint: Optional[str], dtype: str, allow_unsafe: bool):
    return G.build_tokenizer(label, checkpoint, dtype, allow_unsafe)


def tokenizer_or_error(manifest: dict):
    """(tokenizer, None) or (None, why it cannot be rebuilt on this machine)."""
    args = G.tokenizer_args(manifest)
    try:
        return cached_tokenizer(args["label"], args["checkpoint"], args["dtype"], args["allow_unsafe"]), None
    except Exception as e:  # noqa: BLE001 - missing weights, unknown name, bad checkpoint: all shown as is
        return None, f"{type(e).__name__}: {e}"


@st.cache_data(max_entries=48, show_spinner="Reconstructing...")
def item_pixels(run_path: str, mtime_ns: int, dataset: str, item_id: str, resolution: int) -> dict:
    """Original and reconstruction of one item of a run; ``error`` / ``tokenizer_error`` say what is missing."""
    manifest = read_run(run_path, mtime_ns)["manifest"]
    try:
        ds = G.find_dataset(manifest, dataset, opener=cached_dataset)
        item = G.find_item(ds, item_id)
        original = item.load()
    except Exception as e:  # noqa: BLE001 - data moved or changed: say so in the gallery
        return {"error": f"{e}"}
    out = {"words": item.words, "faces": item.faces, "original": original, "reconstruction": None,
           "tokenizer_error": None, "psnr": None}
    tok, why = tokenizer_or_error(manifest)
    if tok is None:
        out["tokenizer_error"] = why
        return out
    try:
        rec = G.reconstruct(tok, manifest, item, original, resolution)
    except Exception as e:  # noqa: BLE001 - e.g. a tokenizer output error on this item: shown beside it
        out["reconstruct_error"] = f"{type(e).__name__}: {e}"
        return out
    out.update(reconstruction=rec.pixels, bpp=rec.bpp, psnr=G.psnr(original, rec.pixels), geometry=rec.geometry)
    return out


# ------------------------------------------------------------------------------------------------ helpers


def _query(name: str, default: str = "") -> str:
    try:
        return str(st.query_params.get(name, default))
    except Exception:  # noqa: BLE001 - query params are a convenience
        return default


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.{digits}f}"


def _digits(column: str) -> int:
    metric = column.split(" ")[0]
    if metric in PERCENT_METRICS or metric in ("PSNR", "rFID", "rFVD"):
        return 2
    if metric in ("bpp",):
        return 3
    return 4 if metric in ("SSIM", "LPIPS") else 3


def _table_height(n_rows: int, row: int = 35, most: int = 36) -> int:
    """Show every row up to ``most`` without an inner scrollbar (st.dataframe's default stops at 10)."""
    return row * (min(n_rows, most) + 1) + 3


def how_to_make_a_report(root: Path) -> None:
    where = "does not exist yet" if not root.exists() else "holds no finished report yet"
    st.info(f"The reports folder `{root}` {where}. Make a report with\n\n"
            f"```bash\n{RUN_COMMAND}\n```\n\n"
            "It writes `reports/<run>/` (rows.parquet, summary, manifest). Point the app at another folder with "
            "`streamlit run app.py -- --reports DIR` or `TOKBENCH_REPORTS=DIR`. Meanwhile the published TokBench "
            "leaderboard is browsable below.")


# ------------------------------------------------------------------------------------------------ pages


def _direction(column: str) -> str:
    return "lower is better" if B.lower_is_better(column) else "higher is better"


def _column_help(column: str) -> str:
    metric = metric_of(column).split(" ")[0]
    unit = UNITS.get(metric, "")
    where = column[len(metric_of(column)):].strip()
    scope = (f"bin {where}" if where in ("S", "M", "L") else "TokBench Mean of the S, M, L bin means"
             if where == "Mean" else "over all instances")
    return f"{metric_of(column)}: {unit + '; ' if unit else ''}{scope}; {_direction(column)}"


def _arrow(column: str) -> str:
    return f"{column} {'↓' if B.lower_is_better(column) else '↑'}"


def _link(page: str, run: str) -> Optional[str]:
    from urllib.parse import quote

    return f"/?page={page}&run={quote(run)}" if run else None


def ranking_csv(table: pd.DataFrame, ranking: B.Ranking, scores: list[str]) -> bytes:
    """The table as shown, with what produced it (suite, protocol, resolution, evaluators) and display rounding."""
    export = table.drop(columns=[c for c in ("details", "gallery") if c in table.columns]).copy()
    for c in scores:
        if c in export:
            export[c] = export[c].round(_digits(c))
    for i, (name, value) in enumerate((("suite", ranking.suite), ("protocol", ranking.protocol),
                                       ("resolution", ranking.resolution), ("evaluators", ranking.evaluators))):
        export.insert(2 + i, name, value)
    return export.to_csv(index=False).encode()


def page_leaderboard(cat: Catalog, ranking: B.Ranking) -> None:
    st.header(f"Leaderboard · {ranking.modality} {ranking.resolution} px · protocol {ranking.protocol}")
    rows = B.ranking_rows(cat.board, ranking)
    if ranking.protocol == B.PUBLISHED_PROTOCOL:
        st.caption("Protocol **tokbench**: rows marked **published** are the TokBench leaderboard "
                   f"(project page, arXiv 2505.18142; `{PUBLISHED_CSV.name}`), ranked together with own runs "
                   "made under the same protocol. T-ACC and T-NED in %, F-Sim 0-1.")
    else:
        st.caption(f"Protocol **{ranking.protocol}**: not numerically comparable with the published TokBench "
                   "leaderboard, whose rows are therefore not ranked here. T-ACC and T-NED in %, F-Sim 0-1.")
    st.caption(f"Suite **{ranking.suite}** · resolution **{ranking.resolution}** · {ranking.own} own run(s), "
               f"{ranking.published} published row(s). Evaluators: {ranking.evaluators}")
    c1, c2, c3 = st.columns([3, 2, 2])
    text = c1.text_input("Filter tokenizers", key="filter_text", placeholder="name or run folder contains...")
    types = c2.multiselect("Type", sorted(rows["type"].dropna().unique()), key="filter_types",
                           help="D discrete, C continuous (as TokBench), codec, - baseline")
    show_pub = True
    if (rows["source"] == PUBLISHED).any():
        show_pub = c3.checkbox("Show published rows", value=True, key="show_published")
    every_bin = c3.checkbox("Every bin of every metric", value=False, key="every_bin")
    shown = B.filter_rows(rows, text, types, show_pub)
    metrics = B.metric_columns(rows, every_bin)
    if not metrics:
        st.info("No scores in this ranking.")
        return
    default = B.default_rank_column(rows)
    by = st.selectbox("Rank by", metrics, index=metrics.index(default) if default in metrics else 0, key="rank_by",
                      help="Click a column header to sort the table by another column.")
    ranked = B.rank(shown, by)
    if ranked.empty:
        st.warning("No row matches the filters.")
        return
    top = ranked.iloc[0]
    st.markdown(f"**Best by {by}:** {B.display_name(top)} with **{_fmt(top[by], _digits(by))}** "
                f"({_direction(by)}; {len(ranked)} rows, "
                f"{int((ranked['source'] == OWN).sum())} own, {int((ranked['source'] == PUBLISHED).sum())} published)")
    # the ranked column sits (pinned) right after the name; every binned score has its instance count beside it
    ordered = [by] + [c for c in metrics if c != by]
    score_cols = [x for c in ordered for x in (c, c + N_SUFFIX) if x in ranked.columns]
    # own runs sharing a label get their run folder in the name; the source column marks published rows
    table = ranked.assign(tokenizer=[d if s == OWN else t for d, s, t in
                                     zip(ranked["display"], ranked["source"], ranked["tokenizer"])])
    table = table.assign(details=[_link("runs", r) if s == OWN else None for r, s in zip(table["run"], table["source"])],
                         gallery=[_link("gallery", r) if s == OWN else None
                                  for r, s in zip(table["run"], table["source"])])
    columns = ["rank", "tokenizer", *score_cols, "source", "type", "factor", "run", "details", "gallery"]
    table = table[[c for c in columns if c in table.columns]]
    config = {c: st.column_config.NumberColumn(_arrow(c), format=f"%.{_digits(c)}f", help=_column_help(c),
                                               pinned=(c == by)) for c in ordered if c in table}
    config.update({c: st.column_config.NumberColumn("n", format="%d", width="small",
                                                    help=f"instances behind {c[:-len(N_SUFFIX)]}",
                                                    pinned=(c == by + N_SUFFIX))
                   for c in table.columns if c.endswith(N_SUFFIX)})
    config.update(rank=st.column_config.NumberColumn("rank", width="small", pinned=True),
                  tokenizer=st.column_config.TextColumn("tokenizer", pinned=True,
                                                        help="label (run folder added when two runs share it)"),
                  source=st.column_config.TextColumn("source", help="own run, or published (TokBench leaderboard)"),
                  details=st.column_config.LinkColumn("details", display_text="run", help="this run's details"),
                  gallery=st.column_config.LinkColumn("gallery", display_text="gallery",
                                                      help="this run's worst words and faces"))
    data = table
    if (table["source"] == PUBLISHED).any():  # tint published rows (a Styler costs ~0.5 ms a row: only then)
        fmt = {c: f"{{:.{_digits(c)}f}}" for c in ordered if c in table}
        fmt.update({c: "{:.0f}" for c in table.columns if c.endswith(N_SUFFIX)})
        data = table.style.apply(lambda r: [PUBLISHED_FILL if r["source"] == PUBLISHED else "" for _ in r], axis=1) \
            .format(fmt, na_rep="")
    st.dataframe(data, hide_index=True, width="stretch", key="board_table", height=_table_height(len(table)),
                 column_config=config, placeholder="")
    missing = int(ranked[by].isna().sum())
    if missing:
        st.caption(f"{missing} row(s) have no {by} and are listed last, unranked (see Run details for metrics "
                   "that were unavailable when a run was made).")
    present = list(dict.fromkeys(metric_of(c).split(" ")[0] for c in ordered if c in table))
    st.caption("Columns: " + "; ".join(f"**{m}** {UNITS[m]} ({_direction(m)})" for m in present if m in UNITS)
               + ". **n**: instances in the bin (a bin of very few instances is a noisy score); "
               "S / M / L are TokBench's scale bins, Mean the unweighted mean of the three.")
    st.download_button("Download this ranking (CSV)", ranking_csv(table, ranking, ordered),
                       file_name=f"tokbench-ranking-{ranking.protocol}-{ranking.resolution}.csv", mime="text/csv")


def page_bins(cat: Catalog, ranking: B.Ranking) -> None:
    st.header("Per-bin scores (S, M, L)")
    rows = B.ranking_rows(cat.board, ranking)
    have = [m for m in FIDELITY_METRICS if any(f"{m} {b}" in rows.columns for b in ("S", "M", "L"))]
    if not have:
        st.info("This ranking has no binned text or face scores (T-ACC, T-NED, F-Sim): its runs scored pixels "
                "only, or the text/face metrics were unavailable (see Run details).")
        return
    names = [B.display_name(r) for _, r in rows.iterrows()]
    own = [n for n, s in zip(names, rows["source"]) if s == OWN]
    col = B.default_rank_column(rows)
    published = [B.display_name(r) for _, r in B.rank(rows, col).iterrows() if r["source"] == PUBLISHED] if col else []
    if own:  # own runs, with the best published rows beside them when the protocol allows both
        default = own[:6] + published[:3]
    else:
        default = published[:6] or names[:6]
    chosen = st.multiselect("Tokenizers", names, default=default, key="bin_tokenizers",
                            help="Runs sharing a label are listed with their run folder: never added together.")
    sel = rows[[n in chosen for n in names]]
    drawn = 0
    for metric in have:
        chart = bin_chart(sel, metric)
        if chart is not None:
            st.altair_chart(chart, width="stretch")
            drawn += 1
    if not drawn:
        st.info("None of the selected tokenizers has binned scores (T-ACC, T-NED, F-Sim per S/M/L bin)"
                + (": pick others above." if rows.shape[0] > sel.shape[0] else "."))
    st.caption("Scale bins are TokBench's (text: mean character width over the longer side; faces: new bins), "
               "fixed per resolution. Published bars are drawn lighter; hover a bar for its value.")


def page_rd(cat: Catalog, ranking: B.Ranking) -> None:
    st.header("Rate-distortion")
    rows = B.ranking_rows(cat.board, ranking, include_published=False)
    own = rows[rows["source"] == OWN]
    if own.empty or "bpp" not in own.columns or own["bpp"].isna().all():
        st.info("No own run with a rate (bpp) in this ranking. Published TokBench rows carry no rate, so they "
                "have no place on this plot; make a run with " + f"`{RUN_COMMAND}`.")
        return
    candidates = [c for c in B.metric_columns(own) if c != "bpp" and own.loc[own["bpp"].notna(), c].notna().any()]
    preferred = [c for c in RD_PREFERENCE if c in candidates] + [c for c in candidates if c not in RD_PREFERENCE]
    chosen = st.multiselect("Metrics", preferred, default=preferred[:4], key="rd_metrics")
    cols = st.columns(2)
    for i, metric in enumerate(chosen):
        chart = rd_chart(own, metric)
        if chart is not None:
            cols[i % 2].altair_chart(chart, width="stretch")
    st.caption("Codecs are curves over their quality settings (runs grouped by tokenizer name, ordered by bpp, each "
               "point labelled with its setting); learned tokenizers and baselines are points. bpp counts the bits "
               "the tokenizer coded for its whole canvas, padding included. The identity (original pixels, 24 bpp, "
               "PSNR capped at 100 dB) is left out so that it does not squash the axes.")


def _run_choice(cat: Catalog, key: str, prefer=None) -> Optional[str]:
    ids = sorted(cat.runs, key=lambda r: (cat.runs[r].date, r), reverse=True)
    if not ids:
        st.info("No own runs yet. Make one with " + f"`{RUN_COMMAND}`.")
        return None
    wanted = _query("run")
    if wanted not in ids and prefer is not None:
        wanted = next((r for r in ids if prefer(r)), ids[0])
    index = ids.index(wanted) if wanted in ids else 0
    choice = st.selectbox("Run", ids, index=index, key=key,
                          format_func=lambda r: f"{cat.runs[r].label}  ·  {r}")
    return choice


def page_runs(cat: Catalog) -> None:
    st.header("Run details")
    rid = _run_choice(cat, "run_details")
    if rid is None:
        return
    rec = cat.runs[rid].record()
    m = rec["manifest"]
    tok = m.get("tokenizer") or {}

    facts = {
        "tokenizer": tok.get("label"), "kind": (tok.get("spec") or {}).get("kind"),
        "checkpoint": tok.get("checkpoint_path") or "-",
        "checkpoint sha256": tok.get("checkpoint_sha256") or "-",
        "suite": m.get("suite"), "protocol": (m.get("protocol") or {}).get("name"),
        "resolutions": ", ".join(map(str, m.get("resolutions") or [])),
        "datasets": "; ".join(f"{d.get('name')} ({d.get('items')} items, sha256 {str(d.get('content_sha256'))[:12]})"
                              for d in m.get("datasets") or []),
        "evaluators": evaluator_set(m, set(rec["summary"]["level"]) if "level" in rec["summary"] else None)[0], "device / dtype": f"{m.get('device')} / {m.get('dtype')}",
        "date": m.get("date"), "git commit": m.get("git_commit") or "-", "tokbench": m.get("tokbench_version"),
        "wall seconds": m.get("wall_seconds"),
        "items computed / cached": f"{m.get('items_computed')} / {m.get('items_cached')}", "folder": rec["path"],
    }
    st.table(pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]}).set_index(""))
    for name, why in sorted((rec.get("unavailable") or {}).items()):
        st.warning(f"metric **{name}** unavailable: {why}")
    for entry in m.get("skipped") or []:
        st.warning(f"skipped item {entry[0]}: {entry[1]}")
    st.subheader("Summary")
    summary = rec["summary"].copy()
    st.caption("As stored: T-ACC / T-NED are fractions 0..1 here (the leaderboard shows %). Mean = unweighted "
               "mean of S, M, L (TokBench); micro = all binned instances; all = every instance.")
    st.dataframe(summary, hide_index=True, width="stretch")
    if rec.get("sets"):
        st.subheader("Set-level metrics")
        st.json(rec["sets"])
    if m.get("timings"):
        st.subheader("Timings")
        st.json(m["timings"], expanded=False)
    st.subheader("Manifest")
    st.json(m, expanded=False)


def page_gallery(cat: Catalog) -> None:
    st.header("Failure gallery")
    rid = _run_choice(cat, "gallery_run", prefer=lambda r: cat.runs[r].has_instances)
    if rid is None:
        return
    ref = cat.runs[rid]
    rec = ref.record()
    path, mtime = ref.path, ref.mtime_ns
    rows = rows_or_error(rid, path, mtime)
    if rows is None:
        return
    resolutions = sorted(int(r) for r in rows["resolution"].unique()) if not rows.empty else []
    c1, c2, c3 = st.columns([1, 2, 2])
    res = c1.selectbox("Resolution", resolutions, key="gallery_res") if len(resolutions) > 1 else \
        (resolutions[0] if resolutions else None)
    n = c1.slider("Instances per column", 1, 24, 4, key="gallery_n")
    scored = rows[rows["level"].isin(["word", "face"])]
    if scored.empty:
        _gallery_without_instances(path, mtime, rec, rows, res, n)
        return
    choices = ["S", "M", "L", "below S"]
    asked = [b for b in _query("bins").split(",") if b in choices]  # ?bins=S,M: a link to one bin
    bins = c2.multiselect("Bins", choices, default=asked or ["S", "M", "L"], key="gallery_bins",
                          help="TokBench scale bins; 'below S' holds instances too small for any bin, which no "
                               "ranked score counts")
    datasets = ["all"] + sorted(scored["dataset"].unique())
    dataset = c2.selectbox("Dataset", datasets, key="gallery_dataset")
    item = c3.text_input("Item contains", key="gallery_item")
    text = c3.text_input("Ground-truth text contains", key="gallery_text", help="words only")
    wanted_bins = [("" if b == "below S" else b) for b in bins]
    filters = dict(resolution=res, bins=wanted_bins, dataset=None if dataset == "all" else dataset, item=item)
    words = G.worst_instances(rows, "word", G.TEXT_ORDER, n, text=text, **filters)
    faces = G.worst_instances(rows, "face", G.FACE_ORDER, n, **filters) if not text.strip() else rows.iloc[:0]
    tok, why = tokenizer_or_error(rec["manifest"])
    if tok is None:
        st.warning(f"Cannot rebuild tokenizer `{G.tokenizer_args(rec['manifest'])['label']}` on this machine, so "
                   f"reconstructions are not shown (originals and the recorded scores are): {why}")
    st.caption("Each instance: the original, the canvas the tokenizer received (after the fit-resize: resize "
               "loss) and the reconstruction (resize + coding loss), same region, enlarged.")
    check = st.empty()
    deltas: list[float] = []
    left, right = st.columns(2)
    for col, title, worst, is_text, column, what in (
            (left, "Worst words", words, True, "T-ACC", "every word in the selection was read exactly"),
            (right, "Worst faces", faces, False, "ID-kept", "every face in the selection kept its identity")):
        with col:
            st.subheader(title)
            if worst.empty:
                st.caption("no scored instance matches the filters")
            elif G.nothing_failed(worst, column):
                st.success(f"Nothing failed: {what}.")
            for _, row in worst.iterrows():
                _instance(path, mtime, rows, row, deltas, text=is_text)
    if (rows["level"] == "video").any() or str(rec["manifest"].get("suite_spec", {}).get("modality")) == "video":
        st.subheader("Worst frames by PSNR")
        _worst_frames(path, mtime, rows, res, n)
    if deltas:
        worst = max(deltas)
        if worst <= G.PSNR_TOLERANCE_DB:
            check.caption(f"Re-run check: the reconstructions shown reproduce the report's PSNR "
                          f"(largest difference {worst:.4f} dB over {len(deltas)} items).")
        else:
            check.warning(f"The reconstructions shown differ from the run's: PSNR off by up to {worst:.3f} dB "
                          "(tokenizer, weights or data changed since the run); the crops may not be what was scored.")


def _gallery_without_instances(path: str, mtime: int, rec: dict, rows: pd.DataFrame, res: Optional[int],
                               n: int) -> None:
    """Runs that scored no word or face (pixel-only suites, video runs without text/face): their worst items by
    PSNR, each at its worst frame."""
    relevant = {k: v for k, v in (rec.get("unavailable") or {}).items() if k in ("text", "face")}
    why = "; ".join(f"{k}: {v}" for k, v in relevant.items())
    st.info("This run has no scored words or faces: it scored pixels only"
            + (f", the text/face metrics were unavailable ({why})" if why else "")
            + ". Its worst items by PSNR are shown instead.")
    _worst_frames(path, mtime, rows, res, n)


def _worst_frames(path: str, mtime: int, rows: pd.DataFrame, res: Optional[int], n: int) -> None:
    """The items with the lowest PSNR, each at its worst frame (videos) beside its reconstruction."""
    items = G.worst_items(rows, n, res)
    if items.empty:
        st.caption("no PSNR in this run either")
        return
    for _, row in items.iterrows():
        px = item_pixels(path, mtime, str(row["dataset"]), str(row["item"]), int(row["resolution"]))
        st.markdown(f"**{row['dataset']} / {row['item']}** · PSNR {_fmt(row['PSNR'], 2)} dB (whole item)")
        if "error" in px:
            st.caption(f"pixels unavailable: {px['error']}")
            continue
        original = px["original"]
        frame = 0
        if px["reconstruction"] is not None and original.shape[0] > 1:
            from tokbench.metrics.pixel import psnr_per_frame

            per = psnr_per_frame(original, px["reconstruction"])
            frame = int(per.argmin())
            st.caption(f"worst frame {frame} of {original.shape[0]}: PSNR {per[frame]:.2f} dB")
        c1, c2 = st.columns(2)
        c1.image(original[frame], caption="original", width="stretch")
        if px["reconstruction"] is not None:
            c2.image(px["reconstruction"][frame], caption="reconstruction", width="stretch")
        else:
            c2.caption("reconstruction unavailable: " + str(px.get("tokenizer_error") or px.get("reconstruct_error")))


def _item_psnr(rows: pd.DataFrame, row: pd.Series) -> Optional[float]:
    if "PSNR" not in rows.columns:
        return None
    sel = rows[(rows["resolution"] == row["resolution"]) & (rows["dataset"] == row["dataset"])
               & (rows["item"] == row["item"]) & rows["level"].isin(["image", "video"])]
    return float(sel["PSNR"].iloc[0]) if not sel.empty and pd.notna(sel["PSNR"].iloc[0]) else None


def _scores(row: pd.Series, text: bool) -> str:
    if text:
        scores = (f"gt **{row.get('gt', '')}** · pred **{row.get('pred', '') or '∅'}** · "
                  f"T-NED {_fmt(row.get('T-NED'), 3)} · T-ACC {_fmt(row.get('T-ACC'), 0)}")
        if isinstance(row.get("pred_original"), str):
            scores += f" · original read as *{row['pred_original'] or '∅'}*"
        return scores
    kept = row.get("ID-kept")
    return f"F-Sim **{_fmt(row.get('F-Sim'), 3)}**" + (
        f" · identity {'kept' if kept == 1.0 else 'lost'}" if kept is not None and pd.notna(kept) else "")


def _region(px: dict, row: pd.Series):
    """(frame, box, annotation) of the row's instance in reloaded pixels; raises when annotations changed."""
    return G.instance_region(px["words"], px["faces"], str(row["level"]), int(row["instance"]))


def _instance(path: str, mtime: int, rows: pd.DataFrame, row: pd.Series, deltas: list, text: bool) -> None:
    px = item_pixels(path, mtime, str(row["dataset"]), str(row["item"]), int(row["resolution"]))
    where = (f"{row['dataset']} / {row['item']} #{int(row['instance'])} · bin {row['bin'] or 'below S'} "
             f"(ratio {_fmt(row['ratio'], 4)})")
    scores = _scores(row, text)
    if "error" in px:
        st.markdown(scores)
        st.caption(f"{where} · pixels unavailable: {px['error']}")
        return
    try:
        frame, box, annotation = _region(px, row)
    except Exception as e:  # noqa: BLE001 - annotations changed since the run
        st.markdown(scores)
        st.caption(f"{where} · {e}")
        return
    if text and annotation != row.get("gt"):
        st.caption(f"annotation changed since the run: now {annotation!r}, scored {row.get('gt')!r}")
    height = 72 if text else 160
    c1, c2, c3 = st.columns(3)
    c1.image(G.enlarge(G.crop(px["original"], frame, box), height), caption="original")
    if px["reconstruction"] is not None:
        c2.image(G.enlarge(G.canvas_crop(px["original"], px["geometry"], frame, box), height),
                 caption="tokenizer input")
        c3.image(G.enlarge(G.crop(px["reconstruction"], frame, box), height), caption="reconstruction")
        reported = _item_psnr(rows, row)
        if reported is not None and px["psnr"] is not None:
            deltas.append(abs(reported - px["psnr"]))
    else:
        c3.caption("reconstruction unavailable")
        if px.get("reconstruct_error"):
            c3.caption(px["reconstruct_error"])
    st.markdown(scores)
    st.caption(where)


def _same_setting(a: dict, b: dict) -> bool:
    """Runs the comparison accepts: same suite, protocol and resolutions (check refuses the rest itself)."""
    ma, mb = a.get("manifest") or {}, b.get("manifest") or {}
    return (ma.get("suite") == mb.get("suite") and (ma.get("protocol") or {}).get("name")
            == (mb.get("protocol") or {}).get("name") and ma.get("resolutions") == mb.get("resolutions"))


def page_compare(cat: Catalog) -> None:
    st.header("Compare two runs")
    ids = sorted(cat.runs, key=lambda r: (cat.runs[r].date, r), reverse=True)
    if len(ids) < 2:
        st.info("A comparison needs two runs of the same suite, protocol and resolution; make another with "
                f"`{RUN_COMMAND}`.")
        return
    label = (lambda r: f"{cat.runs[r].label}  ·  {r}")
    wanted_a = _query("a")
    a = st.selectbox("Run A (reference)", ids, index=ids.index(wanted_a) if wanted_a in ids else 0,
                     key="compare_a", format_func=label)
    rec_a = cat.runs[a].record()
    others = [r for r in ids if r != a and _same_setting(rec_a, cat.runs[r].record())]
    if not others:
        m = rec_a["manifest"]
        st.info(f"No other run of suite {m.get('suite')}, protocol {(m.get('protocol') or {}).get('name')} and "
                f"resolution(s) {', '.join(map(str, m.get('resolutions') or []))} to compare `{a}` with.")
        return
    wanted_b = _query("b")
    b = st.selectbox("Run B (compared with A)", others, index=others.index(wanted_b) if wanted_b in others else 0,
                     key="compare_b", format_func=label)
    ra, rb = cat.runs[a], cat.runs[b]
    out = compare_runs(ra.path, ra.mtime_ns, rb.path, rb.mtime_ns)
    if "error" in out:
        st.warning(f"`{a}` and `{b}` cannot be compared: {out['error']}")
        return
    cells = out["cells"]
    st.markdown(f"**B − A** per metric, resolution and bin, with {out['confidence']:.0%} paired bootstrap "
                f"intervals ({out['resamples']} resamples, seed {out['seed']}): the statistics of `tokbench check` "
                f"(verdicts with its default allowed drops). Display units: T-ACC / T-NED in %, PSNR in dB.")
    better = int((cells["verdict"] == "better").sum())
    worse = int((cells["verdict"] == "worse").sum())
    st.caption(f"B is significantly better in {better} and worse in {worse} of {len(cells)} cells.")
    shown = cells.drop(columns=["column"]).copy()
    for c in ("A", "B", "B - A", "CI low", "CI high"):
        shown[c] = shown[c].round(3)
    st.dataframe(shown, hide_index=True, width="stretch", key="compare_table", height=_table_height(len(shown)),
                 column_config={"bin": st.column_config.TextColumn("bin", help="S/M/L TokBench bins, Mean over "
                                                                   "them, all = every instance")})
    for note in out["notes"]:
        st.caption(note)
    instance_cols = [c for c in dict.fromkeys(cells["column"]) if c in ("T-ACC", "T-NED", "F-Sim")]
    if not instance_cols:
        return
    st.subheader("Instances that changed most")
    c1, c2 = st.columns(2)
    column = c1.selectbox("By", instance_cols, key="compare_metric")
    n = c2.slider("Instances", 1, 24, 6, key="compare_n")
    changed = changed_most(ra.path, ra.mtime_ns, rb.path, rb.mtime_ns, column, n)
    if changed.empty:
        st.success(f"No binned instance has a different {column} in A and B.")
        return
    rows_a = rows_or_error(a, ra.path, ra.mtime_ns)
    rows_b = rows_or_error(b, rb.path, rb.mtime_ns)
    if rows_a is None or rows_b is None:
        return
    text = column in ("T-ACC", "T-NED")
    keys = ["resolution", "dataset", "item", "level", "instance"]
    for _, ch in changed.iterrows():
        sel = {k: ch[k] for k in keys}
        row_a = rows_a.loc[(rows_a[keys] == pd.Series(sel)).all(axis=1)].iloc[0]
        row_b = rows_b.loc[(rows_b[keys] == pd.Series(sel)).all(axis=1)].iloc[0]
        st.markdown(f"**{ch['dataset']} / {ch['item']} #{int(ch['instance'])}** · bin {ch['bin'] or 'below S'} · "
                    f"{column} {ch['b']:.3f} → {ch['c']:.3f} ({ch['change']:+.3f})")
        px_a = item_pixels(ra.path, ra.mtime_ns, str(ch["dataset"]), str(ch["item"]), int(ch["resolution"]))
        px_b = item_pixels(rb.path, rb.mtime_ns, str(ch["dataset"]), str(ch["item"]), int(ch["resolution"]))
        cols = st.columns(3)
        if "error" in px_a:
            st.caption(f"pixels unavailable: {px_a['error']}")
            continue
        try:
            frame, box, _ = _region(px_a, row_a)
        except Exception as e:  # noqa: BLE001
            st.caption(str(e))
            continue
        height = 72 if text else 160
        cols[0].image(G.enlarge(G.crop(px_a["original"], frame, box), height), caption="original")
        for col, px, row, who in ((cols[1], px_a, row_a, "A"), (cols[2], px_b, row_b, "B")):
            if px.get("reconstruction") is None:
                col.caption(f"{who}: reconstruction unavailable")
            else:
                col.image(G.enlarge(G.crop(px["reconstruction"], frame, box), height), caption=f"{who}")
            col.markdown(f"{who}: " + _scores(row, text))


# ------------------------------------------------------------------------------------------------ main


def main(argv: Optional[list[str]] = None) -> None:
    st.set_page_config(page_title="tokbench leaderboard", layout="wide")
    root = reports_dir(argv)
    signature = report_signature(root)
    cat = load_catalog(str(root), signature)

    st.sidebar.title("tokbench")
    slugs = list(PAGES)
    wanted = _query("page", "leaderboard")
    page = st.sidebar.radio("Page", slugs, format_func=PAGES.get, key="page",
                            index=slugs.index(wanted) if wanted in slugs else 0)
    try:
        st.query_params["page"] = page
    except Exception:  # noqa: BLE001
        pass
    st.sidebar.caption(f"Reports: `{root}` · {len(cat.runs)} run{'s' if len(cat.runs) != 1 else ''}")
    unfinished = unfinished_folders(root)
    if unfinished:
        st.sidebar.caption(f"{len(unfinished)} unfinished (no manifest yet): {', '.join(unfinished[:5])}")
    if st.sidebar.button("Reload reports"):
        load_catalog.clear()
        load_rows.clear()
        item_pixels.clear()
        st.rerun()
    if cat.problems:  # in the main area of every page: which report, and why it is left out
        st.warning(f"{len(cat.problems)} report(s) could not be read and are left out of every view "
                   "(the others are shown):\n\n" + "\n".join(f"- `{rid}`: {why}"
                                                             for rid, why in sorted(cat.problems.items())))

    if not cat.runs:
        how_to_make_a_report(root)

    if page in ("leaderboard", "bins", "rd"):
        options = B.rankings(cat.board)
        if not options:
            st.info("Nothing to rank.")
            return
        by_label: dict[str, B.Ranking] = {}
        for r in options:  # labels are the options (stable across new runs); evaluator details disambiguate
            by_label[r.label if r.label not in by_label else f"{r.label} [{r.evaluators}]"] = r
        labels = list(by_label)
        wanted_rank = _query("ranking")
        index = next((i for i, lab in enumerate(labels) if wanted_rank and wanted_rank in lab), 0)
        choice = st.sidebar.selectbox("Ranking", labels, index=index, key="ranking",
                                      help="One suite, protocol, resolution and evaluator set per ranking; "
                                           "protocols are never mixed.")
        ranking = by_label[choice]
        {"leaderboard": page_leaderboard, "bins": page_bins, "rd": page_rd}[page](cat, ranking)
    elif page == "runs":
        page_runs(cat)
    elif page == "compare":
        page_compare(cat)
    else:
        page_gallery(cat)
