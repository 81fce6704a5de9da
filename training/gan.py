"""Stage 2 of SRGAN training: adversarial fine-tuning of a PSNR-trained generator.

Per step: the discriminator learns to tell HR crops from generated ones (standard or relativistic
average GAN loss), then the generator minimises ``pixel_weight`` * pixel + ``content_weight`` *
VGG19 phi_5,4 MSE + ``adv_weight`` * adversarial loss (+ the download-free terms of
:mod:`training.perceptual`). Both use Adam with warm-up + cosine decay.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from .config import TrainConfig
from .discriminator import SRGANDiscriminator
from .losses import AdversarialLoss, ContentLoss, VGG19Features, pixel_loss
from .perceptual import colour_loss, feature_matching_loss, frequency_loss
from .schedule import cosine_schedule

__all__ = ["GanStage", "GeneratorRun"]


class GeneratorRun(Protocol):
    """What a stage-2 step needs of the training run (a :class:`training.train.Trainer`)."""

    device: torch.device
    net: nn.Module

    def forward(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


class GanStage:
    """Discriminator, the stage-2 optimisers and schedulers, and the losses of the SRGAN stage.

    ``vgg`` overrides the content network (tests pass a random-init :class:`VGG19Features`).
    """

    def __init__(
        self, cfg: TrainConfig, net: nn.Module, device: torch.device, *, vgg: VGG19Features | None = None
    ) -> None:
        g = cfg.gan
        self.cfg = cfg
        self.disc = SRGANDiscriminator(in_channels=_in_channels(net)).to(device)
        self.content: ContentLoss | None = None
        if g.content_weight > 0:
            if vgg is None:
                vgg = VGG19Features(cfg.path(g.vgg_weights) if g.vgg_weights else None)
            self.content = ContentLoss(vgg.to(device), g.vgg_scale)
        self.adv = AdversarialLoss(g.relativistic)
        self.opt_g = torch.optim.Adam(net.parameters(), lr=g.lr, betas=(0.9, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=g.lr, betas=(0.9, 0.999))
        sched = cosine_schedule(g.warmup, g.steps, g.lr, g.lr_min)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, sched)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, sched)
        amp = device.type == "cuda"
        self.amp = amp
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=amp)

    def lr(self) -> float:
        return float(self.opt_g.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        names = ("disc", "opt_g", "opt_d", "sched_g", "sched_d", "scaler_g", "scaler_d")
        return {n: getattr(self, n).state_dict() for n in names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            getattr(self, name).load_state_dict(value)

    def _d_step(self, hr: torch.Tensor, fake: torch.Tensor, dev: str) -> float:
        self.disc.train()
        with torch.autocast(dev, dtype=torch.float16, enabled=self.amp):
            loss = self.adv.discriminator(self.disc(hr), self.disc(fake.detach()))
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        self.sched_d.step()
        return float(loss.detach())

    def _g_loss(self, pred: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        g = self.cfg.gan
        loss = g.adv_weight * self.adv.generator(self.disc(hr), self.disc(pred))
        if g.pixel_weight > 0:
            loss = loss + g.pixel_weight * pixel_loss(g.pixel_loss, pred.float(), hr)
        if self.content is not None:
            loss = loss + g.content_weight * self.content(pred.float(), hr)
        if g.fm_weight > 0:
            loss = loss + g.fm_weight * feature_matching_loss(self.disc, pred, hr)
        if g.fft_weight > 0:
            loss = loss + g.fft_weight * frequency_loss(pred, hr)
        if g.colour_weight > 0:
            loss = loss + g.colour_weight * colour_loss(pred.float(), hr)
        return loss

    def step(self, trainer: GeneratorRun, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One discriminator and one generator update; returns the generator and discriminator losses."""
        dev = trainer.device.type
        trainer.net.train()
        with torch.autocast(dev, dtype=torch.float16, enabled=self.amp):
            pred = trainer.forward(trainer.net, batch)
        d_loss = self._d_step(batch["hr"], pred, dev)
        self.disc.requires_grad_(False)
        with torch.autocast(dev, dtype=torch.float16, enabled=self.amp):
            g_loss = self._g_loss(pred, batch["hr"])
        self.disc.requires_grad_(True)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(g_loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.sched_g.step()
        return {"loss": float(g_loss.detach()), "d_loss": d_loss}


def _in_channels(net: nn.Module) -> int:
    """Input channels of a generator (its first conv)."""
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    return int(first.in_channels)
