"""Training losses: pixel (L1 / MSE / Charbonnier), high-frequency, VGG19 content, adversarial.

Every loss takes float tensors (N, C, H, W) on a [0, 1] scale (any float dtype) and returns a
scalar tensor (mean over all elements), differentiable with respect to its prediction input.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "AdversarialLoss",
    "charbonnier",
    "high_frequency_loss",
    "pixel_loss",
]


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """mean(sqrt((pred - target)^2 + eps^2)): a smooth L1 (Lai et al., LapSRN)."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def pixel_loss(
    kind: Literal["l1", "mse", "charbonnier"], pred: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """The pixel loss called ``kind`` between same-shape tensors."""
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind == "charbonnier":
        return charbonnier(pred, target)
    raise ValueError(f"unknown pixel loss {kind!r}; choose l1, mse or charbonnier")


def _gaussian_kernel(sigma: float, channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-(x**2) / (2 * sigma * sigma))
    g = g / g.sum()
    k2 = g[:, None] * g[None, :]
    return k2.expand(channels, 1, -1, -1).contiguous()


def high_pass(x: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """x minus its Gaussian blur (reflect padding): the detail the eye sees as sharpness."""
    c = x.shape[1]
    k = _gaussian_kernel(sigma, c, x.dtype, x.device)
    r = k.shape[-1] // 2
    blurred = F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), k, groups=c)
    return x - blurred


def high_frequency_loss(pred: torch.Tensor, target: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """L1 between the high-pass filtered prediction and target (images need H, W > 3*sigma)."""
    return F.l1_loss(high_pass(pred, sigma), high_pass(target, sigma))


class AdversarialLoss(nn.Module):
    """GAN losses on discriminator logits, standard (Goodfellow) or relativistic average (ESRGAN).

    ``generator(real, fake)`` and ``discriminator(real, fake)`` take the logits (N, ...) of the
    discriminator on real HR and generated images. For the standard GAN the generator loss ignores
    ``real`` (pass it anyway, detached). For the discriminator pass ``fake`` logits computed on
    detached generator output.
    """

    def __init__(self, relativistic: bool = True) -> None:
        super().__init__()
        self.relativistic = relativistic

    @staticmethod
    def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if not self.relativistic:
            return self._bce(fake, 1.0)
        real = real.detach()
        return 0.5 * (self._bce(real - fake.mean(), 0.0) + self._bce(fake - real.mean(), 1.0))

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        fake = fake.detach()
        if not self.relativistic:
            return 0.5 * (self._bce(real, 1.0) + self._bce(fake, 0.0))
        return 0.5 * (self._bce(real - fake.mean(), 1.0) + self._bce(fake - real.mean(), 0.0))
