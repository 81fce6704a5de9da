"""Training losses: pixel (L1 / MSE / Charbonnier), high-frequency, VGG19 content, adversarial.

Every loss takes float tensors (N, C, H, W) on a [0, 1] scale (any float dtype) and returns a
scalar tensor (mean over all elements), differentiable with respect to its prediction input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "VGG19_LAYOUT",
    "AdversarialLoss",
    "ContentLoss",
    "VGG19Features",
    "charbonnier",
    "high_frequency_loss",
    "high_pass",
    "pixel_loss",
]

# torchvision's vgg19 "E" configuration: output channels of each conv, "M" for a 2x2 max-pool
VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


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


def _vgg_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG19_LAYOUT:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """VGG19's convolutional part with torchvision's module layout, so its ``vgg19`` files load as they are.

    ``features`` matches ``torchvision.models.vgg19().features`` key for key (``features.0.weight``
    ...); a full torchvision state dict loads, its ``classifier.*`` tensors are checked for and
    dropped (the content loss never uses them: 400 MB saved). :meth:`forward` returns the feature
    map phi_i,j (default phi_5,4: the 4th conv of block 5, after its ReLU as in SRGAN;
    ``after_activation=False`` gives ESRGAN's pre-activation one). Input (N, 3, H, W) RGB in
    [0, 1] (ImageNet normalisation is applied inside) or (N, 1, H, W) luma, repeated to 3
    channels. ``weights``: path of a torchvision-format ``.pth`` or ``.safetensors`` file; ``None``
    requires ``random_init=True`` (tests). Frozen, always in eval mode.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        block: int = 5,
        conv: int = 4,
        after_activation: bool = True,
        random_init: bool = False,
    ) -> None:
        super().__init__()
        self.features = _vgg_features()
        if weights is not None:
            self._load(Path(weights))
        elif not random_init:
            raise FileNotFoundError(
                "the VGG19 content loss needs ImageNet VGG19 weights: give the path of a torchvision-format "
                "vgg19 state dict (e.g. vgg19-dcbb9e9d.pth) as gan.vgg_weights; vsr downloads nothing"
            )
        self.cut = self._layer_index(block, conv) + (2 if after_activation else 1)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def _load(self, path: Path) -> None:
        state = _read_state_dict(path)
        extra = sorted(k for k in state if not k.startswith(("features.", "classifier.")))
        if extra:
            raise ValueError(f"{path} is not a torchvision VGG19 state dict (unexpected keys {extra[:3]})")
        try:
            self.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")})
        except RuntimeError as exc:
            raise ValueError(f"{path} does not fit VGG19's layout: {exc}") from exc

    @staticmethod
    def _layer_index(block: int, conv: int) -> int:
        """Index in ``features`` of the ``conv``-th conv of block ``block`` (both 1-based)."""
        b, c = 1, 0
        for i, m in enumerate(_vgg_features()):
            if isinstance(m, nn.MaxPool2d):
                b, c = b + 1, 0
            elif isinstance(m, nn.Conv2d):
                c += 1
                if (b, c) == (block, conv):
                    return i
        raise ValueError(f"VGG19 has no conv {conv} in block {block}")

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # always eval: a fixed feature extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        for layer in self.features[: self.cut]:
            h = layer(h)
        return h


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


class ContentLoss(nn.Module):
    """SRGAN's VGG content loss: MSE between VGG19 phi_5,4 features of prediction and target.

    Features are multiplied by ``scale`` (SRGAN: 1/12.75) before the MSE. Inputs as
    :class:`VGG19Features` takes them; returns a scalar.
    """

    def __init__(self, vgg: VGG19Features, scale: float = 1.0 / 12.75) -> None:
        super().__init__()
        self.vgg, self.scale = vgg, scale

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ft = self.vgg(target)
        return F.mse_loss(self.vgg(pred) * self.scale, ft * self.scale)
