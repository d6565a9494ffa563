"""Altair charts: per-bin bars and rate-distortion curves (pure functions of leaderboard rows)."""
from __future__ import annotations

from typing import Optional

import altair as alt
import pandas as pd

from tokbench.bins import BIN_NAMES
from tokbench.leaderboard.board import display_name
from tokbench.leaderboard.catalog import OWN, PERCENT_METRICS, UNITS, lower_is_better

BIN_TITLES = {"S": "S (small)", "M": "M (medium)", "L": "L (large)"}


def unit(metric: str) -> str:
    """Axis title with the unit: ``T-ACC (%)``, ``PSNR (dB)``; ``F-Sim Mean`` -> ``F-Sim Mean (0-1)``."""
    base = metric.split(" ")[0]
    if base in PERCENT_METRICS:
        return f"{metric} (%)"
    u = {"PSNR": "dB", "SSIM": "0-1", "F-Sim": "0-1", "bpp": "bits/pixel", "ID-kept": "0-1"}.get(base)
    return f"{metric} ({u})" if u else metric


LEGEND_COLUMNS = 3


def legend(title: str) -> alt.Legend:
    """Legends below the plot, in columns, so long run names never squeeze the plot sideways."""
    return alt.Legend(title=title, orient="bottom", columns=LEGEND_COLUMNS, labelLimit=320)


def total_height(plot: int, series: int) -> int:
    """The chart height to ask for: Streamlit fits title, axes and the bottom legend into it, so the legend's
    rows (and ~110 px of title, axis labels and titles) are added to keep the plot itself ``plot`` px tall."""
    return plot + 110 + 20 * (1 + -(-series // LEGEND_COLUMNS))


def bin_values(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Long table (tokenizer, source, bin, value) of one binned metric; rows without it are left out."""
    records = []
    for _, r in rows.iterrows():
        for b in BIN_NAMES:
            v = r.get(f"{metric} {b}")
            if v is not None and pd.notna(v):
                records.append({"tokenizer": display_name(r), "source": r["source"], "bin": b,
                                "bin_title": BIN_TITLES[b], "value": float(v)})
    return pd.DataFrame.from_records(records, columns=["tokenizer", "source", "bin", "bin_title", "value"])


def bin_chart(rows: pd.DataFrame, metric: str, height: int = 260) -> Optional[alt.Chart]:
    """Grouped bars: one group per scale bin, one bar per tokenizer (published bars lighter)."""
    data = bin_values(rows, metric)
    if data.empty:
        return None
    order = list(dict.fromkeys(data["tokenizer"]))
    mixed = data["source"].nunique() > 1
    better = "lower is better" if lower_is_better(metric) else "higher is better"
    return alt.Chart(data, title=f"{unit(metric)} per scale bin ({better})").mark_bar().encode(
        x=alt.X("bin_title:N", sort=[BIN_TITLES[b] for b in BIN_NAMES], title="scale bin",
                axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("tokenizer:N", sort=order),
        y=alt.Y("value:Q", title=unit(metric)),
        color=alt.Color("tokenizer:N", sort=order, legend=legend("tokenizer")),
        opacity=alt.Opacity("source:N", scale=alt.Scale(domain=[OWN, "published"], range=[1.0, 0.55]),
                            title="source", legend=alt.Legend() if mixed else None),
        tooltip=["tokenizer", "source", "bin", alt.Tooltip("value:Q", format=".3f", title=unit(metric))],
    ).properties(height=total_height(height, len(order)))


def rd_values(rows: pd.DataFrame, metric: str, rate: str = "bpp") -> pd.DataFrame:
    """Own runs with both a rate and ``metric``: codecs keep their family name so they join into curves."""
    if rate not in rows.columns or metric not in rows.columns:
        return pd.DataFrame(columns=["tokenizer", "name", "kind", "curve", "rate", "value", "run"])
    own = rows[(rows["source"] == OWN) & rows[rate].notna() & rows[metric].notna() & (rows["name"] != "identity")]
    shown = own["display"].fillna(own["tokenizer"]) if "display" in own.columns else own["tokenizer"]
    data = pd.DataFrame({"tokenizer": shown, "name": own["name"], "kind": own["kind"],
                         "rate": own[rate].astype(float), "value": own[metric].astype(float), "run": own["run"]})
    data["curve"] = [n if k == "codec" else t for n, k, t in zip(data["name"], data["kind"], data["tokenizer"])]
    # a codec point is labelled with its setting (quality=5, crf=35), a learned tokenizer with its name
    data["setting"] = [t.split(":", 1)[1] if k == "codec" and ":" in t else t
                       for t, k in zip(data["tokenizer"], data["kind"])]
    return data.sort_values(["curve", "rate"]).reset_index(drop=True)


def rd_chart(rows: pd.DataFrame, metric: str, rate: str = "bpp", height: int = 280) -> Optional[alt.Chart]:
    """Rate against ``metric``: codecs as lines over their quality settings (ordered by rate), learned
    tokenizers and baselines as labelled points. The rate axis is logarithmic (codecs span decades)."""
    data = rd_values(rows, metric, rate)
    if data.empty:
        return None
    better = "lower is better" if lower_is_better(metric) else "higher is better"
    x = alt.X("rate:Q", scale=alt.Scale(type="log"), title=f"{rate} (bits per pixel, log scale)")
    y = alt.Y("value:Q", scale=alt.Scale(zero=False), title=f"{unit(metric)}, {better}")
    color = alt.Color("curve:N", legend=legend("tokenizer / codec"))
    tooltip = ["tokenizer", "kind", alt.Tooltip("rate:Q", format=".3f", title=rate),
               alt.Tooltip("value:Q", format=".4g", title=unit(metric)), "run"]
    base = alt.Chart(data)
    codecs = base.transform_filter(alt.datum.kind == "codec")
    lines = codecs.mark_line(point=True).encode(x=x, y=y, color=color, order="rate:Q", tooltip=tooltip)
    points = base.transform_filter(alt.datum.kind != "codec").mark_point(size=90, filled=True, shape="diamond") \
        .encode(x=x, y=y, color=color, tooltip=tooltip)
    labels = base.mark_text(align="left", dx=6, dy=-7, fontSize=10).encode(x=x, y=y, text="setting:N", color=color)
    return alt.layer(lines, points, labels, title=f"rate-distortion: {unit(metric)}") \
        .properties(height=total_height(height, data["curve"].nunique()))
