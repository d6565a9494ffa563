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
from tokbench.leaderboard.catalog import (FIDELITY_METRICS, OWN, PERCENT_METRICS, PUBLISHED, Catalog, build_catalog,
                                          evaluator_set, read_run, report_signature, unfinished_folders)
from tokbench.leaderboard.charts import bin_chart, rd_chart
from tokbench.leaderboard.published import PUBLISHED_CSV, published_rows

PAGES = {"leaderboard": "Leaderboard", "bins": "Per-bin charts", "rd": "Rate-distortion", "runs": "Run details",
         "gallery": "Failure gallery"}
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
    out.update(reconstruction=rec.pixels, bpp=rec.bpp, psnr=G.psnr(original, rec.pixels))
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


def page_leaderboard(cat: Catalog, ranking: B.Ranking) -> None:
    st.header("Leaderboard")
    rows = B.ranking_rows(cat.board, ranking)
    if ranking.protocol == B.PUBLISHED_PROTOCOL:
        st.caption("Protocol **tokbench**: rows marked **published** are the TokBench leaderboard "
                   f"(project page, arXiv 2505.18142; `{PUBLISHED_CSV.name}`), ranked together with own runs "
                   "made under the same protocol. T-ACC and T-NED in %, F-Sim 0-1.")
    else:
        st.caption(f"Protocol **{ranking.protocol}**: not numerically comparable with the published TokBench "
                   "leaderboard, whose rows are therefore not ranked here. T-ACC and T-NED in %, F-Sim 0-1.")
    st.caption(f"{ranking.own} own run(s), {ranking.published} published row(s). Evaluators: {ranking.evaluators}")
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
                f"({'lower' if B.lower_is_better(by) else 'higher'} is better; {len(ranked)} rows, "
                f"{int((ranked['source'] == OWN).sum())} own, {int((ranked['source'] == PUBLISHED).sum())} published)")
    columns = ["rank", "source", "tokenizer", "type", "factor", *metrics, "run"]
    table = ranked[[c for c in columns if c in ranked.columns]]
    config = {c: st.column_config.NumberColumn(c, format=f"%.{_digits(c)}f") for c in metrics if c in table}
    config.update(rank=st.column_config.NumberColumn("rank", width="small"),
                  source=st.column_config.TextColumn("source", help="own run, or published (TokBench leaderboard)"))
    data = table
    if (table["source"] == PUBLISHED).any():  # tint published rows (a Styler costs ~0.5 ms a row: only then)
        data = table.style.apply(lambda r: [PUBLISHED_FILL if r["source"] == PUBLISHED else "" for _ in r], axis=1) \
            .format({c: f"{{:.{_digits(c)}f}}" for c in metrics}, na_rep="")
    st.dataframe(data, hide_index=True, width="stretch", key="board_table", height=_table_height(len(table)),
                 column_config=config, placeholder="")
    missing = int(ranked[by].isna().sum())
    if missing:
        st.caption(f"{missing} row(s) have no {by} and are listed last, unranked (see Run details for metrics "
                   "that were unavailable when a run was made).")
    st.download_button("Download this ranking (CSV)", table.to_csv(index=False).encode(),
                       file_name="tokbench-ranking.csv", mime="text/csv")


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
    if own:
        default = own[:8]
    else:
        col = B.default_rank_column(rows)
        default = [B.display_name(r) for _, r in B.rank(rows, col).head(6).iterrows()] if col else names[:6]
    chosen = st.multiselect("Tokenizers", names, default=default, key="bin_tokenizers")
    sel = rows[[n in chosen for n in names]]
    for metric in have:
        chart = bin_chart(sel, metric)
        if chart is not None:
            st.altair_chart(chart, width="stretch")
    st.caption("Scale bins are TokBench's (text: mean character width over the longer side; faces: new bins), "
               "fixed per resolution. Published bars are drawn lighter.")


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
    st.caption("Codecs are curves over their quality settings (runs grouped by tokenizer name, ordered by bpp); "
               "learned tokenizers and baselines are points. bpp counts the bits the tokenizer coded for its "
               "whole canvas, padding included.")


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
        "evaluators": evaluator_set(m)[0], "device / dtype": f"{m.get('device')} / {m.get('dtype')}",
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
    rows = load_rows(path, mtime)
    resolutions = sorted(int(r) for r in rows["resolution"].unique()) if not rows.empty else []
    c1, c2 = st.columns(2)
    res = c1.selectbox("Resolution", resolutions, key="gallery_res") if len(resolutions) > 1 else \
        (resolutions[0] if resolutions else None)
    n = c2.slider("Instances per column", 1, 24, 4, key="gallery_n")
    words = G.worst_instances(rows, "word", G.TEXT_ORDER, n, res)
    faces = G.worst_instances(rows, "face", G.FACE_ORDER, n, res)
    if words.empty and faces.empty:
        why = "; ".join(f"{k}: {v}" for k, v in (rec.get("unavailable") or {}).items())
        st.info("This run has no scored words or faces: its suite scored pixels only"
                + (f", or the text/face metrics were unavailable ({why})" if why else "") + ".")
        return
    tok, why = tokenizer_or_error(rec["manifest"])
    if tok is None:
        st.warning(f"Cannot rebuild tokenizer `{G.tokenizer_args(rec['manifest'])['label']}` on this machine, so "
                   f"reconstructions are not shown (originals and the recorded scores are): {why}")
    check = st.empty()
    deltas: list[float] = []
    left, right = st.columns(2)
    with left:
        st.subheader("Worst words")
        if words.empty:
            st.caption("no scored words")
        for _, row in words.iterrows():
            _instance(path, mtime, rows, row, deltas, text=True)
    with right:
        st.subheader("Worst faces")
        if faces.empty:
            st.caption("no scored faces")
        for _, row in faces.iterrows():
            _instance(path, mtime, rows, row, deltas, text=False)
    if deltas:
        worst = max(deltas)
        if worst <= G.PSNR_TOLERANCE_DB:
            check.caption(f"Re-run check: the reconstructions shown reproduce the report's PSNR "
                          f"(largest difference {worst:.4f} dB over {len(deltas)} items).")
        else:
            check.warning(f"The reconstructions shown differ from the run's: PSNR off by up to {worst:.3f} dB "
                          "(tokenizer, weights or data changed since the run); the crops may not be what was scored.")


def _item_psnr(rows: pd.DataFrame, row: pd.Series) -> Optional[float]:
    if "PSNR" not in rows.columns:
        return None
    sel = rows[(rows["resolution"] == row["resolution"]) & (rows["dataset"] == row["dataset"])
               & (rows["item"] == row["item"]) & rows["level"].isin(["image", "video"])]
    return float(sel["PSNR"].iloc[0]) if not sel.empty and pd.notna(sel["PSNR"].iloc[0]) else None


def _instance(path: str, mtime: int, rows: pd.DataFrame, row: pd.Series, deltas: list, text: bool) -> None:
    px = item_pixels(path, mtime, str(row["dataset"]), str(row["item"]), int(row["resolution"]))
    where = f"{row['item']} #{int(row['instance'])} · bin {row['bin'] or '-'} (ratio {_fmt(row['ratio'], 4)})"
    if text:
        scores = (f"gt **{row.get('gt', '')}** · pred **{row.get('pred', '') or '∅'}** · "
                  f"T-NED {_fmt(row.get('T-NED'), 3)} · T-ACC {_fmt(row.get('T-ACC'), 0)}")
        if isinstance(row.get("pred_original"), str):
            scores += f" · original read as *{row['pred_original'] or '∅'}*"
    else:
        kept = row.get("ID-kept")
        scores = f"F-Sim **{_fmt(row.get('F-Sim'), 3)}**" + (
            f" · identity {'kept' if kept == 1.0 else 'lost'}" if kept is not None and pd.notna(kept) else "")
    if "error" in px:
        st.markdown(scores)
        st.caption(f"{where} · pixels unavailable: {px['error']}")
        return
    try:
        frame, box, annotation = G.instance_region(px["words"], px["faces"], str(row["level"]), int(row["instance"]))
    except Exception as e:  # noqa: BLE001 - annotations changed since the run
        st.markdown(scores)
        st.caption(f"{where} · {e}")
        return
    if text and annotation != row.get("gt"):
        st.caption(f"annotation changed since the run: now {annotation!r}, scored {row.get('gt')!r}")
    height = 72 if text else 160
    c1, c2 = st.columns(2)
    c1.image(G.enlarge(G.crop(px["original"], frame, box), height), caption="original")
    if px["reconstruction"] is not None:
        c2.image(G.enlarge(G.crop(px["reconstruction"], frame, box), height), caption="reconstruction")
        reported = _item_psnr(rows, row)
        if reported is not None and px["psnr"] is not None:
            deltas.append(abs(reported - px["psnr"]))
    else:
        c2.caption("reconstruction unavailable")
        if px.get("reconstruct_error"):
            c2.caption(px["reconstruct_error"])
    st.markdown(scores)
    st.caption(where)


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
    if cat.problems:
        with st.sidebar.expander(f"{len(cat.problems)} unreadable report(s)"):
            for rid, why in sorted(cat.problems.items()):
                st.caption(f"{rid}: {why}")

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
    else:
        page_gallery(cat)
