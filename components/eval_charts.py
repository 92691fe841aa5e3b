"""Tables and the figure of the Measure segmentation page, built from core results without widgets (so a bench
or a test can build them too)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.analysis.click_eval import ModelRun, summarize


def summary_table(runs: Sequence[ModelRun], labels: dict[str, str]) -> pd.DataFrame:
    """One row per model: objects, mIoU at 1, 3, 5 and N clicks, the oracle first click, NoC@85/90 with failures,
    embedding seconds and decoder milliseconds per click."""
    rows = []
    for run in runs:
        if not run.runs:
            continue
        objects = [r for _, r in run.runs]
        s = summarize(objects)
        n = len(s.miou)
        clicks = sum(len(r.clicks) for r in objects)
        row = {"model": labels.get(run.model, run.model), "objects": s.objects}
        row |= {f"mIoU@{k}": round(float(s.miou[k - 1]), 4) for k in sorted({1, min(3, n), min(5, n), n})}
        row |= {
            "oracle mIoU@1": round(s.oracle_miou1, 4),
            "NoC@85": round(s.noc85, 2),
            "fail@85": s.fail85,
            "NoC@90": round(s.noc90, 2),
            "fail@90": s.fail90,
            "embedding s": round(run.embed_s, 2),
            "decoder ms/click": round(1000 * sum(r.decode_s for r in objects) / max(clicks, 1), 1),
            "stopped early": run.cancelled,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def object_table(runs: Sequence[ModelRun], labels: dict[str, str]) -> pd.DataFrame:
    """Every number: one row per model and object, the IoU after each click, the oracle first click, the clicks."""
    rows = []
    for run in runs:
        for target, r in run.runs:
            row = {
                "model": labels.get(run.model, run.model),
                "image": target.image_name,
                "object": target.index + 1,
                "label": target.label,
                "area px": int(target.mask.sum()),
                "oracle IoU@1": round(r.oracle_iou, 4),
            }
            row |= {f"IoU@{k + 1}": round(v, 4) for k, v in enumerate(r.ious)}
            row["clicks (x,y,±)"] = " ".join(f"{c.x},{c.y},{'+' if c.positive else '-'}" for c in r.clicks)
            rows.append(row)
    return pd.DataFrame(rows)


def miou_figure(runs: Sequence[ModelRun], labels: dict[str, str]) -> go.Figure:
    """mIoU after 1..N clicks, one line per model."""
    figure = go.Figure()
    for run in runs:
        if run.runs:
            curve = summarize([r for _, r in run.runs]).miou
            clicks = np.arange(1, len(curve) + 1)
            figure.add_trace(
                go.Scatter(
                    x=clicks.tolist(), y=curve.tolist(), mode="lines+markers", name=labels.get(run.model, run.model)
                )
            )
    figure.update_layout(
        xaxis_title="clicks", yaxis_title="mIoU", yaxis_range=[0, 1], height=360, margin=dict(l=10, r=10, t=30, b=10)
    )
    figure.update_xaxes(dtick=1)
    return figure
