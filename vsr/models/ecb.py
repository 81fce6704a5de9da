"""Edge-oriented convolution blocks (ECBSR, Zhang et al. 2021): rich to train, one 3x3 conv to run.

:class:`EdgeConvBlock` trains five branches side by side: a 3x3 conv, a 1x1 expansion followed by a
3x3 conv, and 1x1 convs followed by fixed Sobel-x, Sobel-y and Laplacian filters with learnt
per-channel scales. All five are linear in the input, so :meth:`EdgeConvBlock.fold` sums them into a
single ``nn.Conv2d`` that gives the same output (the 1x1 outputs are padded with their own biases,
which is what makes the fold exact at the borders too). :class:`EcbNet` is the x2 CPU network built
from these blocks; :func:`fold_edge_blocks` turns a trained one into the plain net that ships: the
same MACs as a plain conv stack of that shape, the training-time branches free at inference.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EcbNet", "EdgeConvBlock", "fold_edge_blocks"]

_SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
_SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))
_LAPLACE = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def _pad_with(y: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``y`` padded by one pixel on each side with the per-channel ``value`` (a 1x1 conv's bias)."""
    out = F.pad(y, (1, 1, 1, 1))
    v = value.view(1, -1, 1, 1)
    out[:, :, :1, :] = v
    out[:, :, -1:, :] = v
    out[:, :, :, :1] = v
    out[:, :, :, -1:] = v
    return out


class _FixedFilter(nn.Module):
    """1x1 conv (cin -> cout), then a fixed 3x3 depthwise filter with a learnt scale and bias."""

    def __init__(self, cin: int, cout: int, mask: tuple[tuple[float, ...], ...]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.scale = nn.Parameter(torch.randn(cout, 1, 1, 1) * 1e-3)
        self.bias = nn.Parameter(torch.randn(cout) * 1e-3)
        self.register_buffer("mask", torch.tensor(mask).expand(cout, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _pad_with(self.conv(x), self.conv.bias)
        return F.conv2d(y, self.scale * self.mask, self.bias, groups=self.conv.out_channels)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.scale * self.mask  # (cout, 1, 3, 3)
        weight = k * self.conv.weight  # (cout, 1, 3, 3) * (cout, cin, 1, 1) -> (cout, cin, 3, 3)
        bias = self.bias + self.conv.bias * k.sum(dim=(1, 2, 3))
        return weight, bias


class _ExpandSqueeze(nn.Module):
    """1x1 conv expanding to ``mid`` channels, then a 3x3 conv down to ``cout``."""

    def __init__(self, cin: int, cout: int, mid: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(cin, mid, 1)
        self.squeeze = nn.Conv2d(mid, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.squeeze(_pad_with(self.expand(x), self.expand.bias))

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        k1 = self.expand.weight[:, :, 0, 0]  # (mid, cin)
        weight = torch.einsum("omhw,mi->oihw", self.squeeze.weight, k1)
        bias = self.squeeze.bias + torch.einsum("omhw,m->o", self.squeeze.weight, self.expand.bias)
        return weight, bias


class EdgeConvBlock(nn.Module):
    """A 3x3 conv (``cin`` -> ``cout``, padding 1) trained as five parallel linear branches."""

    def __init__(self, cin: int, cout: int, expand: int = 2) -> None:
        super().__init__()
        self.in_channels, self.out_channels = cin, cout
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1)
        self.expand_squeeze = _ExpandSqueeze(cin, cout, expand * cout)
        self.edges = nn.ModuleList(_FixedFilter(cin, cout, m) for m in (_SOBEL_X, _SOBEL_Y, _LAPLACE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(x) + self.expand_squeeze(x)
        for branch in self.edges:
            y = y + branch(x)
        return y

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        """The single 3x3 conv equal to this block (float32, same device)."""
        weight, bias = self.conv3.weight.clone(), self.conv3.bias.clone()
        for branch in (self.expand_squeeze, *self.edges):
            w, b = branch.folded()
            weight += w
            bias += b
        conv = nn.Conv2d(self.in_channels, self.out_channels, 3, padding=1).to(weight.device)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return conv


class EcbNet(nn.Module):
    """The x2 CPU tier (ECBSR-M4C16 shape): 3x3 conv 1->16, four 3x3 16->16, 3x3 16->s^2, PReLU
    between, PixelShuffle. Y/255 in (N, 1, H, W) -> luma residual over bicubic, (N, 1, sH, sW).

    ``training=True`` builds each conv as an :class:`EdgeConvBlock`; the shipped (folded) form has
    plain ``nn.Conv2d`` layers under the same state-dict keys (``body.0.weight``, ...).
    """

    def __init__(self, features: int = 16, convs: int = 4, scale: int = 2, *, training: bool = False) -> None:
        super().__init__()
        conv = EdgeConvBlock if training else (lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1))
        widths = [1, *([features] * (convs + 1))]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(widths):
            layers += [conv(cin, cout), nn.PReLU(cout)]
        layers += [conv(features, scale * scale), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def fold_edge_blocks(net: nn.Module) -> nn.Module:
    """Replace every :class:`EdgeConvBlock` inside ``net`` by its folded conv, in place; returns ``net``."""
    for name, child in list(net.named_children()):
        if isinstance(child, EdgeConvBlock):
            setattr(net, name, child.fold())
        else:
            fold_edge_blocks(child)
    return net
