"""The shipped `fast-stream` weights: better than `fast` and bicubic on compressed input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vsr.backends import create_backend
from vsr.evaluate import load_image
from vsr.imresize import imresize
from vsr.metrics import luma, modcrop, psnr
from vsr.models.catalogue import get_spec

SET14 = Path(__file__).resolve().parents[2] / "shared" / "data" / "val" / "Set14"


@pytest.mark.skipif(not SET14.is_dir(), reason=f"benchmark images not found at {SET14}")
@pytest.mark.parametrize(
    ("stream", "clean", "gain"),
    [
        ("fast-stream", "fast", 0.3),
        ("fast-lite-stream", "fast-lite", 0.3),
        ("fast-tiny-stream", "fast-tiny", 0.2),
    ],
)
def test_stream_model_beats_its_clean_parent_and_bicubic_on_jpeg_damaged_input(stream, clean, gain):
    pytest.importorskip("torch")
    if not get_spec(stream).has_weights:
        pytest.skip(f"{stream} weights not shipped")
    models = (stream, clean, "bicubic")
    backends = {m: create_backend("torch" if m != "bicubic" else "auto", m) for m in models}
    scores: dict[str, list[float]] = {m: [] for m in models}
    for path in sorted(SET14.glob("*.png")):
        hr = load_image(path)
        if hr.ndim == 2:
            continue
        hr = modcrop(hr, 4)
        ok, buf = cv2.imencode(".jpg", imresize(hr, 0.25)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 40])
        assert ok
        lr = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
        for m, b in backends.items():
            scores[m].append(psnr(luma(hr), luma(b.infer(lr[None])[0]), 4))
    mean = {m: float(np.mean(v)) for m, v in scores.items()}
    assert len(scores[clean]) == 13
    assert mean[stream] > mean[clean] + gain, mean
    assert mean[stream] > mean["bicubic"] + gain, mean
    wins = sum(a > b for a, b in zip(scores[stream], scores["bicubic"], strict=True))
    assert wins >= 12, f"{stream} beat bicubic on {wins}/13 images"
