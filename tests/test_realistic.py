"""Second-order training degradations (training/realistic.py) and their use by the crop sampler."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("av")

from training.data import CropSampler, HRImage, load_folders
from training.realistic import RealisticConfig, codec_batch, realistic_lr, unsharp
from vsr.metrics import psnr

SET5 = Path(__file__).resolve().parents[2] / "shared" / "data" / "val" / "Set5"


def _photo() -> np.ndarray:
    """A 96x96 natural-looking test image: smooth gradients, edges and fine texture."""
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    img = np.stack([x * 2.5, y * 2.5, 128 + 60 * np.sin(x / 3.0) * np.cos(y / 5.0)], axis=2)
    img[30:60, 30:60] = (250, 40, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_realistic_lr_has_the_lr_size_and_is_reproducible():
    cfg = RealisticConfig(p=1.0)
    a = realistic_lr(_photo(), 4, cfg, np.random.default_rng(7))
    b = realistic_lr(_photo(), 4, cfg, np.random.default_rng(7))
    c = realistic_lr(_photo(), 4, cfg, np.random.default_rng(8))
    assert a.shape == (24, 24, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("codec", ["h264", "hevc", "jpeg"])
def test_codec_batch_damages_more_at_a_higher_crf(codec):
    images = [_photo()[i : i + 48, i : i + 48].copy() for i in (0, 8, 16, 24)]

    def coded(crf: int, quality: int) -> list[np.ndarray]:
        cfg = RealisticConfig(
            crf=(crf, crf),
            jpeg_quality=(quality, quality),
            h264_p=1.0 if codec == "h264" else 0.0,
            hevc_p=1.0 if codec == "hevc" else 0.0,
        )
        return codec_batch(images, cfg, np.random.default_rng(0))

    light, heavy = coded(18, 95), coded(45, 10)
    assert [im.shape for im in heavy] == [im.shape for im in images]
    gain = [
        psnr(o.astype(float), lo.astype(float), 0) - psnr(o.astype(float), hi.astype(float), 0)
        for o, lo, hi in zip(images, light, heavy, strict=True)
    ]
    assert min(gain) > 3.0, gain  # every crop coded on its own, and the strong setting hurts more


def test_unsharp_sharpens_and_amount_zero_is_identity():
    img = _photo()
    np.testing.assert_array_equal(unsharp(img, 0.0), img)
    sharp = unsharp(img, 1.0)
    energy = lambda a: np.abs(np.diff(a.astype(np.float32), axis=1)).mean()  # noqa: E731
    assert energy(sharp) > 1.1 * energy(img)


@pytest.mark.skipif(not SET5.is_dir(), reason=f"{SET5} missing: the shared data lies beside the repo")
def test_sampler_mixes_realistic_and_clean_lr_and_resumes_exactly():
    images: list[HRImage] = load_folders([SET5], scale=2)
    cfg = RealisticConfig(p=0.5, usm=0.3, h264_p=1.0)
    sampler = CropSampler(images, patch=24, scale=2, realistic=cfg, seed=1)
    sampler.batch(4)
    state = sampler.state_dict()
    first = sampler.batch(8)
    sampler.load_state_dict(state)
    again = sampler.batch(8)
    for key in ("lr", "base", "hr"):
        np.testing.assert_array_equal(first[key], again[key])
    assert first["lr"].shape == (8, 1, 24, 24) and first["hr"].shape == (8, 1, 48, 48)
    # base is the bicubic upscale of the (damaged) LR the network sees, as at inference
    import cv2

    up = cv2.resize(first["lr"][0, 0], (48, 48), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(first["base"][0, 0], up, atol=1e-5)
    # the same draws without the sharpened target: identical LR, a softer HR
    soft = CropSampler(images, patch=24, scale=2, realistic=replace(cfg, usm=0.0), seed=1)
    soft.batch(4)
    plain = soft.batch(8)
    np.testing.assert_array_equal(first["lr"], plain["lr"])
    assert np.abs(np.diff(first["hr"], axis=3)).mean() > 1.05 * np.abs(np.diff(plain["hr"], axis=3)).mean()
