"""Side-by-side crops for a person to judge at a glance: input (bicubic) | method | reference.

The crop is a square around the largest face the detector finds in the reference frame (BlazeFace
by default, :mod:`vsr.face`), 1.8 x the face's size and at least 192 px; with no face (or no
detector), the centre of the frame. Pixels are shown 1:1, each panel under a one-line label.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError, VsrError

__all__ = ["crop_box", "face_box", "grid", "side_by_side", "write_crops"]

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x, y, w, h


def face_box(frame: np.ndarray, detector: str = "blazeface") -> tuple[float, float, float, float] | None:
    """The largest face (x0, y0, x1, y1) in an (H, W, 3) uint8 RGB frame, or None (none found, or
    the detector cannot be built here: logged)."""
    from ..face.detect import create_detector

    try:
        boxes = create_detector(detector).detect(frame)
    except VsrError as exc:
        log.info("no face detector for the crops (%s); cropping the centre", exc)
        return None
    if len(boxes) == 0:
        return None
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    x0, y0, x1, y1 = (float(v) for v in boxes[int(np.argmax(areas))])
    return x0, y0, x1, y1


def crop_box(height: int, width: int, face: tuple[float, float, float, float] | None) -> Box:
    """A square (x, y, side, side) inside a ``height`` x ``width`` frame: around ``face`` (1.8 x its
    larger side, at least 192 px) or, without one, half the shorter side at the centre."""
    limit = min(height, width)
    if face is None:
        side, cx, cy = max(1, limit // 2), width / 2, height / 2
    else:
        x0, y0, x1, y1 = face
        side = min(limit, max(192, round(1.8 * max(x1 - x0, y1 - y0))))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x = int(np.clip(round(cx - side / 2), 0, width - side))
    y = int(np.clip(round(cy - side / 2), 0, height - side))
    return x, y, side, side


def _labelled(label: str, img: np.ndarray) -> np.ndarray:
    band = np.full((24, img.shape[1], 3), 0 if label else 255, dtype=np.uint8)
    cv2.putText(band, label, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([band, img], axis=0)


def side_by_side(panels: Sequence[tuple[str, np.ndarray]], gap: int = 4) -> np.ndarray:
    """Same-height (H, W, 3) uint8 RGB panels with labels above, left to right -> a new image."""
    cells = [_labelled(label, img) for label, img in panels]
    h = cells[0].shape[0]
    spacer = np.full((h, gap, 3), 255, dtype=np.uint8)
    row: list[np.ndarray] = []
    for c in cells:
        row += [c, spacer]
    return np.concatenate(row[:-1], axis=1)


def grid(panels: Sequence[tuple[str, np.ndarray]], columns: int = 4, gap: int = 4) -> np.ndarray:
    """Same-size labelled panels in rows of ``columns`` (the last row padded white) -> a new image."""
    blank = np.full_like(panels[0][1], 255)
    rows = []
    for i in range(0, len(panels), columns):
        chunk = list(panels[i : i + columns])
        chunk += [("", blank)] * (columns - len(chunk))
        rows.append(side_by_side(chunk, gap))
    spacer = np.full((gap, rows[0].shape[1], 3), 255, dtype=np.uint8)
    out: list[np.ndarray] = []
    for r in rows:
        out += [r, spacer]
    return np.concatenate(out[:-1], axis=0)


def write_crops(
    folder: Path, stem: str, box: Box, reference: np.ndarray, outputs: dict[str, np.ndarray]
) -> list[Path]:
    """Write ``{stem}_{method}.png`` (input as bicubic | method | reference) for each method in
    ``outputs`` (full (H, W, 3) uint8 RGB frames; ``"bicubic"`` among them is the input column) and
    ``{stem}_all.png`` (every method in a grid). Returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y, w, h = box

    def cut(img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(img[y : y + h, x : x + w])

    ref, inp = cut(reference), cut(outputs["bicubic"])
    written = []
    for name, img in outputs.items():
        if name == "bicubic":
            continue
        path = folder / f"{stem}_{name.replace('+', '_')}.png"
        _save(path, side_by_side([("input (bicubic)", inp), (name, cut(img)), ("reference", ref)]))
        written.append(path)
    panels = [("input (bicubic)", inp)]
    panels += [(n, cut(i)) for n, i in outputs.items() if n != "bicubic"]
    panels += [("reference", ref)]
    path = folder / f"{stem}_all.png"
    _save(path, grid(panels))
    return [*written, path]


def _save(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OutputError(f"cannot write {path}")
