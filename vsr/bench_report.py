"""Presenting a ``vsr bench`` report: the plain-text table and the frames/s bar chart.

Both take the JSON-able dict that :func:`vsr.bench.run_bench` returns (``machine`` and ``results``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError

__all__ = ["format_report", "plot_report"]


def _num(row: dict[str, object], key: str, fmt: str = ".1f") -> str:
    v = row.get(key)
    return format(v, fmt) if isinstance(v, int | float) and v is not None else "-"


def _label(row: dict[str, object]) -> str:
    return f"{row['model']} (random weights)" if row.get("random_weights") else str(row["model"])


def format_report(report: dict[str, object]) -> str:
    """A plain-text table of a :func:`run_bench` report, with the machine in the header.

    ``net fps``: the network alone on GPU-resident input (CUDA backends); ``-`` where not measured.
    """
    m = report["machine"]
    assert isinstance(m, dict)
    rows: list[dict[str, object]] = report["results"]  # type: ignore[assignment]
    head = f"machine: {m['cpu']}, {m['cores']} cores, GPU: {m['gpu'] or 'none'}; torch {m['torch']}, onnxruntime {m['onnxruntime']}"
    mw = max([28, *(len(_label(r)) for r in rows)])
    bw = max([34, *(len(str(r.get("backend_used", r["backend"]))) for r in rows)])
    cols = (
        f"{'model':<{mw}} {'backend':<{bw}} {'size':>9} {'model fps':>10} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'net fps':>8} {'e2e fps':>8} {'RSS MB':>7}"
    )
    lines = [head, cols, "-" * len(cols)]
    for r in rows:
        if "error" in r:
            lines.append(f"{_label(r):<{mw}} {r['backend']:<{bw}} {r['size']:>9}  error: {r['error']}")
            continue
        lines.append(
            f"{_label(r):<{mw}} {r.get('backend_used', r['backend']):<{bw}} {r['size']:>9} "
            f"{_num(r, 'model_fps'):>10} {_num(r, 'model_p50_ms'):>8} {_num(r, 'model_p95_ms'):>8} "
            f"{_num(r, 'net_fps'):>8} {_num(r, 'e2e_fps'):>8} {_num(r, 'peak_rss_mb', '.0f'):>7}"
        )
    return "\n".join(lines)


def plot_report(report: dict[str, object], path: Path) -> None:
    """A horizontal bar chart of frames/s per case (model only, network alone where measured, end
    to end), real time marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib") from None
    rows = [r for r in report["results"] if "error" not in r]  # type: ignore[union-attr]
    labels = [f"{_label(r)} | {r['backend']} | {r['size']}" for r in rows]
    net_fps = [r.get("net_fps") or 0 for r in rows]
    series = [
        ("model only", [r.get("model_fps") or 0 for r in rows]),
        *([("network alone (input on the GPU)", net_fps)] if any(net_fps) else []),
        ("end to end (decode, upscale, encode)", [r.get("e2e_fps") or 0 for r in rows]),
    ]
    y = np.arange(len(rows))
    bar = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(9, 1.2 + (0.15 + 0.2 * len(series)) * len(rows)))
    for k, (name, values) in enumerate(series):
        off = (k - (len(series) - 1) / 2) * bar
        ax.barh(y + off, values, bar, label=name)
        for yy, v in zip(y, values, strict=True):
            if v:
                ax.text(v, yy + off, f" {v:.1f}", va="center", fontsize=8)
    every = [v for _, values in series for v in values]
    ax.axvline(30, color="grey", ls="--", lw=1, label="30 frames/s (real time)")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    if max(every, default=0) > 20 * max(min((v for v in every if v), default=1), 1):
        ax.set_xscale("log")  # bicubic runs 100x faster than a network: keep the networks readable
    ax.set_xlabel("frames per second (4x output)")
    m = report["machine"]
    assert isinstance(m, dict)
    ax.set_title(f"vsr bench — {m['cpu']}, {m['cores']} cores, GPU: {m['gpu'] or 'none'}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
