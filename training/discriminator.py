"""The SRGAN discriminator (Ledig et al. 2017, fig. 4), made size-agnostic with adaptive pooling.

Eight 3x3 convs with LeakyReLU(0.2): 64 (stride 1, no BN), then conv-BN-LeakyReLU blocks of
64/s2, 128/s1, 128/s2, 256/s1, 256/s2, 512/s1, 512/s2; an adaptive average pool to ``pool`` x
``pool`` (6 x 6 is what a 96 px HR crop gives in the paper), Dense(1024), LeakyReLU, Dense(1).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SRGANDiscriminator"]


def _block(cin: int, cout: int, stride: int, bn: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class SRGANDiscriminator(nn.Module):
    """Scores HR images: (N, C, H, W) in [0, 1] -> (N, 1) logits (real > 0). Any H, W >= 16.

    ``in_channels``: 3 for RGB generators, 1 for luma ones. ``features``: width of the first conv
    (the paper's 64); widths double every second block up to 8x.
    """

    def __init__(self, in_channels: int = 3, features: int = 64, pool: int = 6) -> None:
        super().__init__()
        f = features
        widths = [(f, 2), (2 * f, 1), (2 * f, 2), (4 * f, 1), (4 * f, 2), (8 * f, 1), (8 * f, 2)]
        layers = _block(in_channels, f, 1, bn=False)
        cin = f
        for cout, stride in widths:
            layers += _block(cin, cout, stride)
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * pool * pool, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 16 or x.shape[-2] < 16:
            raise ValueError(f"SRGANDiscriminator needs images of at least 16x16, got {tuple(x.shape)}")
        return self.head(self.pool(self.features(x)))
