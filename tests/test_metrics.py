"""vsr.metrics: known values, SSIM against scikit-image's Wang et al. settings, errors, flicker."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsr.metrics import flicker, luma, modcrop, psnr, psnr_y, ssim, ssim_y


def _smooth(rng: np.random.Generator, h: int = 48, w: int = 40) -> np.ndarray:
    """A smooth-ish uint8 RGB test image (H, W, 3)."""
    base = rng.random((h // 8 + 1, w // 8 + 1, 3))
    up = np.kron(base, np.ones((8, 8, 1)))[:h, :w]
    return np.clip(up * 200 + rng.normal(0, 8, up.shape) + 20, 0, 255).astype(np.uint8)


def test_psnr_known_values() -> None:
    a = np.full((20, 20), 100.0)
    assert psnr(a, a + 1.0) == pytest.approx(10 * math.log10(255.0**2), abs=1e-9)  # MSE 1: 48.13 dB
    assert psnr(a, a + 10.0) == pytest.approx(28.1308, abs=1e-4)
    assert psnr(a, a) == math.inf


def test_psnr_border_crop_ignores_the_frame() -> None:
    a = np.zeros((20, 20))
    b = a.copy()
    b[:4] = 255.0  # only the 4-px border differs
    assert psnr(a, b, border=4) == math.inf
    assert psnr(a, b, border=3) < 20


def test_luma_bt601_studio_range_and_gray() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    y = luma(rgb)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16.0 + 65.481], atol=1e-9)
    gray = np.array([[0, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(luma(gray), [[0.0, 128.0, 255.0]])  # its own values, no formula
    np.testing.assert_array_equal(luma(gray[:, :, None]), luma(gray))
    with pytest.raises(ValueError, match="expected"):
        luma(np.zeros((4, 4, 2)))


def test_modcrop() -> None:
    img = np.zeros((103, 98, 3), np.uint8)
    assert modcrop(img, 4).shape == (100, 96, 3)
    assert modcrop(img[:, :, 0], 4).shape == (100, 96)
    with pytest.raises(ValueError, match="scale"):
        modcrop(img, 0)


def test_ssim_matches_scikit_image_gaussian_ssim() -> None:
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = luma(_smooth(rng))
    b = np.clip(a + rng.normal(0, 6, a.shape), 0, 255)
    ours = ssim(a, b)
    ref = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0
    )
    assert ours == pytest.approx(ref, abs=1e-6)
    assert 0.3 < ours < 0.99
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_y_metrics_and_shape_errors() -> None:
    rng = np.random.default_rng(1)
    hr = _smooth(rng)
    sr = np.clip(hr.astype(int) + 3, 0, 255).astype(np.uint8)
    assert 35 < psnr_y(hr, sr) < 45
    assert 0.9 < ssim_y(hr, sr) < 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        psnr_y(hr, sr[:-4])
    with pytest.raises(ValueError, match="border"):
        psnr(np.zeros((6, 6)), np.zeros((6, 6)), border=3)
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((12, 12)), np.zeros((12, 12)), border=2)


def test_flicker_ratio() -> None:
    rng = np.random.default_rng(2)
    ref = [np.full((16, 16), 100.0 + 2 * t) for t in range(6)]  # a steady fade: 2 levels per frame
    same = flicker(ref, ref)
    assert same == {
        "flicker": pytest.approx(2.0),
        "reference": pytest.approx(2.0),
        "ratio": pytest.approx(1.0),
    }
    noisy = [f + rng.normal(0, 5, f.shape) for f in ref]
    assert flicker(noisy, ref)["ratio"] > 2.0
    box = flicker(noisy, ref, region=(0, 0, 4, 4))
    assert box["reference"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="two equal sequences"):
        flicker(ref[:1], ref[:1])
