"""The table of a :func:`vsr.quality.evaluate_video` result: plain text for a terminal, or Markdown."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_video_table"]

_COLUMNS = (  # (title, key, plain width, format)
    ("VMAF", "vmaf", 6, ".1f"),
    ("VMAF-NEG", "vmaf_neg", 8, ".1f"),
    ("Y-PSNR", "psnr_y", 6, ".2f"),
    ("SSIM", "ssim_y", 6, ".4f"),
    ("tOF", "tof", 6, ".3f"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, fmt)


def format_video_table(result: dict[str, Any], *, markdown: bool = False) -> str:
    """One row per (clip, kbps, model), then the means over clips (when there are several).

    VMAF columns show ``—`` where VMAF could not run (the result's ``vmaf`` field says why).
    Higher is better for every column but tOF (temporal flicker, lower is better).
    """
    rows = [*result["rows"], *result.get("mean", [])]
    width = max([len(r["clip"]) for r in rows] + [4])
    mwidth = max([len(r["model"]) for r in rows] + [5])
    if markdown:
        head = "| clip | kbps | model | " + " | ".join(c[0] for c in _COLUMNS) + " |"
        lines = [head, "|---|---:|---|" + "---:|" * len(_COLUMNS)]
        for r in rows:
            cells = [_cell(r[key], fmt) for _, key, _, fmt in _COLUMNS]
            clip = f"**{r['clip']}**" if r["clip"] == "mean" else r["clip"]
            lines.append(f"| {clip} | {r['kbps']:g} | {r['model']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
    head = f"{'clip':<{width}} {'kbps':>5} {'model':<{mwidth}}" + "".join(
        f" {title:>{w}}" for title, _, w, _ in _COLUMNS
    )
    lines = [
        f"input {result['size']} (H.264), reference 4x, first {result['seconds']:g} s; "
        f"VMAF: {result['vmaf']}",
        head,
        "-" * len(head),
    ]
    previous = None
    for r in rows:
        if previous is not None and (r["clip"], r["kbps"]) != previous:
            lines.append("")
        previous = (r["clip"], r["kbps"])
        cells = "".join(f" {_cell(r[key], fmt):>{w}}" for _, key, w, fmt in _COLUMNS)
        lines.append(f"{r['clip']:<{width}} {r['kbps']:>5g} {r['model']:<{mwidth}}{cells}")
    return "\n".join(lines)
