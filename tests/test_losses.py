"""training.losses and training.discriminator: known values, gradients (gradcheck), VGG19 layout."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training.discriminator import SRGANDiscriminator  # noqa: E402
from training.losses import (  # noqa: E402
    AdversarialLoss,
    ContentLoss,
    VGG19Features,
    charbonnier,
    high_frequency_loss,
    high_pass,
    pixel_loss,
)

# torchvision.models.vgg19().features: convolutions at these indices (ReLU after each, 5 max-pools)
TORCHVISION_VGG19_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def _double(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64).requires_grad_(True)


def test_pixel_losses_known_values() -> None:
    zeros, ones = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
    assert pixel_loss("l1", zeros, ones).item() == pytest.approx(1.0)
    assert pixel_loss("mse", zeros, 2 * ones).item() == pytest.approx(4.0)
    assert charbonnier(ones, ones, eps=1e-3).item() == pytest.approx(1e-3)
    assert pixel_loss("charbonnier", zeros, ones).item() == pytest.approx(math.sqrt(1 + 1e-6))
    with pytest.raises(ValueError, match="unknown pixel loss 'l3'"):
        pixel_loss("l3", zeros, ones)  # type: ignore[arg-type]


def test_pixel_losses_gradcheck() -> None:
    target = _double(1, 1, 5, 5, seed=1).detach()
    for kind in ("l1", "mse", "charbonnier"):
        x = _double(1, 1, 5, 5) + 0.0
        x = x.detach().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda p, k=kind: pixel_loss(k, p, target), (x,))


def test_high_frequency_loss() -> None:
    flat = torch.full((1, 1, 12, 12), 0.7, dtype=torch.float64)
    assert high_pass(flat).abs().max().item() < 1e-12  # a constant has no high frequencies
    assert high_frequency_loss(flat, flat + 0.3).item() < 1e-12  # brightness shifts are ignored
    x, target = _double(1, 2, 10, 10), _double(1, 2, 10, 10, seed=3).detach()
    assert high_frequency_loss(x, target).item() > 0.01
    assert torch.autograd.gradcheck(lambda p: high_frequency_loss(p, target, sigma=1.0), (x,))


def test_adversarial_losses_known_values_and_gradients() -> None:
    zero = torch.zeros(4, 1)
    std, rel = AdversarialLoss(relativistic=False), AdversarialLoss(relativistic=True)
    assert std.generator(zero, zero).item() == pytest.approx(math.log(2))
    assert std.discriminator(zero, zero).item() == pytest.approx(math.log(2))
    assert rel.generator(zero, zero).item() == pytest.approx(math.log(2))
    # a discriminator that separates real (+5) from fake (-5) has a small loss, the generator a large one
    real, fake = torch.full((4, 1), 5.0), torch.full((4, 1), -5.0)
    for loss in (std, rel):
        assert loss.discriminator(real, fake).item() < 0.01
        assert loss.generator(real, fake).item() > 4.9
    r, f = _double(3, 1, seed=4).detach(), _double(3, 1, seed=5)
    assert torch.autograd.gradcheck(lambda p: rel.generator(r, p), (f,))
    assert torch.autograd.gradcheck(
        lambda p: std.discriminator(p, f.detach()), (r.clone().requires_grad_(True),)
    )


def test_vgg19_has_torchvision_layout_and_loads_its_files(tmp_path: Path) -> None:
    vgg = VGG19Features(random_init=True)
    expected = {f"features.{i}.{p}" for i in TORCHVISION_VGG19_CONVS for p in ("weight", "bias")}
    assert set(vgg.state_dict()) == expected
    x = torch.rand(2, 3, 32, 32)
    assert vgg(x).shape == (2, 512, 2, 2)  # phi_5,4: four 2x2 pools before block 5
    assert vgg(x).min().item() >= 0  # after its ReLU
    assert vgg(x[:, :1]).shape == (2, 512, 2, 2)  # luma is repeated to RGB
    # a torchvision-format file (features + classifier keys) loads; the classifier is dropped
    state = {k: torch.randn_like(v) for k, v in vgg.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = VGG19Features(tmp_path / "vgg19.pth")
    assert torch.equal(loaded.features[34].weight, state["features.34.weight"])
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_vgg19_refuses_missing_or_wrong_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        VGG19Features()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VGG19Features(tmp_path / "none.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a torchvision VGG19"):
        VGG19Features(tmp_path / "bad.pth")


def test_content_loss_zero_on_identity_and_differentiable() -> None:
    loss = ContentLoss(VGG19Features(random_init=True, after_activation=False))
    target = torch.rand(1, 3, 32, 32)
    assert loss(target, target).item() == 0.0
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    value = loss(pred, target)
    value.backward()
    assert value.item() > 0 and pred.grad is not None and pred.grad.abs().sum().item() > 0


@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 96), (3, 50)])
def test_discriminator_any_size(channels: int, size: int) -> None:
    disc = SRGANDiscriminator(in_channels=channels, features=8)
    x = torch.rand(2, channels, size, size, requires_grad=True)
    out = disc(x)
    assert out.shape == (2, 1)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum().item() > 0


def test_discriminator_rejects_tiny_inputs() -> None:
    with pytest.raises(ValueError, match="at least 16x16"):
        SRGANDiscriminator()(torch.rand(1, 3, 8, 8))
