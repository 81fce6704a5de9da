"""Perceptual signals for the adversarial stage that need no downloaded network (issue 15, srgan).

No ImageNet VGG19 is at hand offline, so the generator is steered by what the run itself has:

- :func:`feature_matching_loss`: L1 between the discriminator's intermediate features of the
  generated and the real crop (Salimans et al. 2016; pix2pixHD) — a learnt perceptual distance
  that follows the discriminator as it improves.
- :func:`frequency_loss`: L1 between the 2D FFT amplitude spectra of prediction and target
  (in the spirit of the focal frequency loss, Jiang et al. 2021): a regular stipple or checkerboard
  is a set of spectral peaks the target does not have, which a pixel loss barely sees.
- :func:`colour_loss`: L1 between heavily blurred prediction and target per channel: the mean
  colour of every region must stay the target's (the adversarial term alone let `srgan` drift warm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import high_pass

__all__ = ["colour_loss", "discriminator_features", "feature_matching_loss", "frequency_loss"]


def discriminator_features(disc: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of each LeakyReLU of ``disc.features`` for ``x`` (one per conv block)."""
    feats = []
    for layer in disc.features:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            feats.append(x)
    return feats


def feature_matching_loss(disc: nn.Module, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over blocks of L1(features(pred), features(target)); the target side carries no gradient."""
    with torch.no_grad():
        real = discriminator_features(disc, target)
    fake = discriminator_features(disc, pred)
    return torch.stack([F.l1_loss(f, r) for f, r in zip(fake, real, strict=True)]).mean()


def frequency_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between orthonormal 2D FFT amplitudes of ``pred`` and ``target`` (float32)."""
    fp = torch.fft.rfft2(pred.float(), norm="ortho").abs()
    ft = torch.fft.rfft2(target.float(), norm="ortho").abs()
    return F.l1_loss(fp, ft)


def colour_loss(pred: torch.Tensor, target: torch.Tensor, sigma: float = 3.0) -> torch.Tensor:
    """L1 between the low-pass (Gaussian ``sigma``) parts of ``pred`` and ``target``, per channel."""
    return F.l1_loss(pred - high_pass(pred, sigma), target - high_pass(target, sigma))
