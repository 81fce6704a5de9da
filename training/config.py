"""Training configuration: frozen dataclasses read from a TOML file (see ``training/configs/``).

Relative paths in a config are resolved against the repository root (the folder holding
``training/``), so ``../shared/data/train/T91`` means the shared data beside the repo.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from .degrade import DegradeConfig
from .realistic import RealisticConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["REPO_ROOT", "DataConfig", "GanConfig", "PixelConfig", "TrainConfig", "load_config"]

REPO_ROOT = Path(__file__).resolve().parents[1]

PixelLoss = Literal["l1", "mse", "charbonnier"]


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how crops are cut. ``patch`` is the LR crop side in pixels."""

    train: tuple[str, ...] = ("../shared/data/train/T91", "../shared/data/train/BSD200")
    val: str = "../shared/data/val/Set5"
    patch: int = 24
    batch: int = 32
    augment: bool = True
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    realistic: RealisticConfig = field(default_factory=RealisticConfig)


@dataclass(frozen=True)
class PixelConfig:
    """Stage 1: PSNR-oriented training with a pixel loss (optionally switching loss late in the run).

    ``switch_at``: fraction of ``steps`` after which ``switch_loss`` replaces ``loss`` (1.0: never).
    ``hf_weight``: weight of the high-frequency loss added to the pixel loss (0: off).
    """

    steps: int = 10_000
    lr: float = 1e-3
    lr_min: float = 1e-6
    warmup: int = 200
    decay_start: int = 0  # > warmup: constant lr until this step, cosine decay after it
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    loss: PixelLoss = "l1"
    switch_loss: PixelLoss = "mse"
    switch_at: float = 1.0
    hf_weight: float = 0.0
    grad_clip: float = 0.0


@dataclass(frozen=True)
class GanConfig:
    """Stage 2 (SRGAN): adversarial fine-tuning of the stage-1 generator. ``steps`` 0: no stage 2.

    Generator loss = ``pixel_weight`` * pixel + ``content_weight`` * VGG phi_5,4 MSE (features
    scaled by ``vgg_scale``) + ``adv_weight`` * adversarial, plus the download-free perceptual
    terms of :mod:`training.perceptual` (``fm_weight``, ``fft_weight``, ``colour_weight``). ``vgg_weights``: a torchvision-format
    VGG19 state dict file (required when ``content_weight`` > 0).
    """

    steps: int = 0
    lr: float = 1e-4
    lr_min: float = 1e-6
    warmup: int = 0
    pixel_loss: PixelLoss = "l1"
    pixel_weight: float = 0.0
    content_weight: float = 1.0
    adv_weight: float = 1e-3
    relativistic: bool = True
    vgg_weights: str = ""
    vgg_scale: float = 1.0 / 12.75
    fm_weight: float = 0.0  # discriminator feature matching (training.perceptual)
    fft_weight: float = 0.0  # FFT amplitude L1: penalises regular stipple / checkerboard
    colour_weight: float = 0.0  # low-pass L1 per channel: keeps the mean colour of regions


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; see ``training/configs/*.toml`` for annotated examples."""

    model: str = "fast"
    run_dir: str = "runs/default"
    seed: int = 0
    threads: int = 2
    channels_last: bool = True  # NHWC training: ~20% faster on CPU for these conv stacks
    ema: float = 0.999
    log_every: int = 100
    val_every: int = 2000
    ckpt_every: int = 2000
    keep_ckpts: int = 3
    init_from: str = ""  # a checkpoint whose EMA generator initialises this run (e.g. srresnet -> srgan)
    init_deepen: bool = False  # init_from is a shallower FastNet: insert identity layers (fast -> fast-plus)
    data: DataConfig = field(default_factory=DataConfig)
    pixel: PixelConfig = field(default_factory=PixelConfig)
    gan: GanConfig = field(default_factory=GanConfig)

    @property
    def total_steps(self) -> int:
        return self.pixel.steps + self.gan.steps

    def path(self, value: str) -> Path:
        """``value`` as a path, relative ones resolved against the repository root."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else REPO_ROOT / p


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in [{where}] of the training config")
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        nested = {
            "degrade": DegradeConfig,
            "realistic": RealisticConfig,
            "data": DataConfig,
            "pixel": PixelConfig,
            "gan": GanConfig,
        }
        if key in nested and isinstance(value, dict):
            kwargs[key] = _build(nested[key], value, f"{where}.{key}" if where else key)
        else:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def load_config(path: Path, **overrides: Any) -> TrainConfig:
    """Read a TOML training config; ``overrides`` replace top-level fields (e.g. ``run_dir``)."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    cfg: TrainConfig = _build(TrainConfig, table, "")
    return replace(cfg, **overrides) if overrides else cfg
