"""Download-free perceptual terms of the adversarial stage (training/perceptual.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.discriminator import SRGANDiscriminator  # noqa: E402
from training.perceptual import colour_loss, feature_matching_loss, frequency_loss  # noqa: E402


def _image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 72, 72, generator=g), 9, 1)
    return smooth.clamp(0, 1)  # (1, 3, 64, 64), soft natural-ish texture


def test_frequency_loss_sees_a_stipple_that_a_shift_does_not_make():
    x = _image()
    checker = 0.01 * ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2 - 1).float()
    stippled = x + checker
    shifted = torch.roll(x, shifts=(1, 1), dims=(2, 3))  # same content, moved one pixel
    assert frequency_loss(x, x) == 0
    # a pixel loss calls the shift the bigger error; the amplitude spectrum calls the stipple bigger
    assert (shifted - x).abs().mean() > (stippled - x).abs().mean()
    assert frequency_loss(stippled, x) > 5 * frequency_loss(shifted, x)


def test_colour_loss_measures_a_colour_cast_not_fine_grain():
    x = _image()
    warm = x + torch.tensor([3.0, 0.0, -2.0]).view(1, 3, 1, 1) / 255.0
    grain = x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    assert colour_loss(warm, x).item() == pytest.approx(5.0 / 3 / 255.0, rel=0.02)
    assert colour_loss(grain, x) < 0.25 * colour_loss(warm, x)


def test_feature_matching_is_zero_for_the_target_and_trains_only_the_generator_side():
    disc = SRGANDiscriminator(in_channels=3, features=8).eval()
    x = _image()
    assert feature_matching_loss(disc, x, x).item() == 0.0
    pred = (x + 0.1).requires_grad_(True)
    loss = feature_matching_loss(disc, pred, x)
    loss.backward()
    assert loss.item() > 0 and pred.grad is not None and pred.grad.abs().sum() > 0
