"""Generator architectures. Every network here maps a float32 NCHW tensor to its 4x upscale.

Input/output conventions (the catalogue records which one a model uses):

* ``rgb`` models take (N, 3, H, W) RGB in [0, 1] and return (N, 3, 4H, 4W) RGB in ~[0, 1].
* ``y`` models take (N, 1, H, W) BT.601 luma in [0, 1] (``Y/255`` with Y in 16..235) and return the
  *residual* (N, 1, 4H, 4W) to add to the bicubic upscale of that luma. The bicubic upscale and the
  chroma are done outside the network (cv2.resize is ~100x cheaper than a Resize node on CPU).

Only ``torch`` is imported here; the rest of vsr imports this module lazily.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CompactNet", "FastNet", "SRResNet", "fold_batchnorm"]


class _ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(ch)
        self.act = nn.PReLU(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """The SRGAN generator of Ledig et al. 2017 (SRResNet).

    9x9 head + PReLU, ``blocks`` residual blocks (conv-BN-PReLU-conv-BN), conv-BN with a global skip,
    two PixelShuffle(2) stages with PReLU, 9x9 tail. RGB in [0, 1] -> RGB in ~[0, 1].
    Call :func:`fold_batchnorm` before inference or export: BN is folded into the convolutions.
    """

    def __init__(self, features: int = 64, blocks: int = 16) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, features, 9, padding=4), nn.PReLU(features))
        self.body = nn.Sequential(*[_ResidualBlock(features) for _ in range(blocks)])
        self.body_conv = nn.Conv2d(features, features, 3, padding=1)
        self.body_bn = nn.BatchNorm2d(features)
        self.upsample = nn.Sequential(
            nn.Conv2d(features, features * 4, 3, padding=1),
            nn.PixelShuffle(2),
            nn.PReLU(features),
            nn.Conv2d(features, features * 4, 3, padding=1),
            nn.PixelShuffle(2),
            nn.PReLU(features),
        )
        self.tail = nn.Conv2d(features, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body_bn(self.body_conv(self.body(h)))
        return self.tail(self.upsample(h))


class CompactNet(nn.Module):
    """A plain stack of 3x3 convs with PReLU, PixelShuffle(4), plus the nearest-upsampled input.

    The SRVGG-style GPU real-time tier. RGB in [0, 1] -> RGB in ~[0, 1]. ``convs`` counts the
    body convolutions between the first (3 -> features) and the last (features -> 3*16).
    """

    def __init__(self, features: int = 64, convs: int = 16, scale: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, features, 3, padding=1), nn.PReLU(features)]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.PReLU(features)]
        layers += [nn.Conv2d(features, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class FastNet(nn.Module):
    """The CPU real-time tier: an ESPCN/FSRCNN-class luma network, ~38K MACs per input pixel.

    conv5x5 1->48, then 3x3 48->32, 32->32, 32->32, 32->16, PReLU between, PixelShuffle(4).
    Y/255 in (N, 1, H, W) -> luma residual over bicubic, (N, 1, 4H, 4W).
    """

    def __init__(self, widths: tuple[int, ...] = (48, 32, 32, 32), scale: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 5 if i == 0 else 3, padding=2 if i == 0 else 1), nn.PReLU(w)]
            cin = w
        layers += [nn.Conv2d(cin, scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    std = torch.sqrt(bn.running_var + bn.eps)
    gain = bn.weight / std
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * gain.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * gain + bn.bias)
    return fused


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every conv -> BatchNorm pair of an :class:`SRResNet` in place; returns the model.

    The result computes the same function as the model in eval mode, with no BN layers left.
    Models without BN are returned unchanged.
    """
    if not isinstance(model, SRResNet):
        return model
    for block in model.body:
        assert isinstance(block, _ResidualBlock)
        if isinstance(block.bn1, nn.BatchNorm2d):
            block.conv1, block.bn1 = _fold(block.conv1, block.bn1), nn.Identity()
            block.conv2, block.bn2 = _fold(block.conv2, block.bn2), nn.Identity()
    if isinstance(model.body_bn, nn.BatchNorm2d):
        model.body_conv, model.body_bn = _fold(model.body_conv, model.body_bn), nn.Identity()
    return model
