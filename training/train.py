"""Train a catalogue generator: ``python -m training.train --config training/configs/fast.toml``.

Stage 1 trains with a pixel loss (PSNR-oriented), stage 2 (``[gan]`` steps > 0, SRGAN) fine-tunes
adversarially with a VGG19 content loss. Adam with warm-up + cosine decay per stage, an EMA of the
generator weights (validated, checkpointed and exported), AMP on CUDA, checkpoints every
``ckpt_every`` steps that resume exactly (``--resume``), a CSV log and PNG curves in ``run_dir``,
validation on ``data.val`` with the exact SR protocol of :func:`vsr.evaluate.evaluate`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vsr.models.arch import fold_batchnorm
from vsr.models.catalogue import get_spec, new_network
from vsr.models.ecb import fold_edge_blocks

from .checkpoint import latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint, set_rng_state
from .config import TrainConfig, load_config
from .data import CropSampler, load_folders
from .gan import GanStage
from .losses import high_frequency_loss, pixel_loss
from .runlog import RunLog
from .schedule import cosine_schedule
from .warmstart import init_deepened, init_matching

__all__ = ["Trainer", "cosine_schedule", "init_deepened", "init_matching", "main"]

log = logging.getLogger("training")


def _parent_weights(path: Path) -> dict[str, torch.Tensor]:
    """The generator weights a run starts from: a checkpoint's EMA, or a shipped ``.safetensors``.

    Any other suffix is read with :func:`load_checkpoint`, a full unpickling (``weights_only=False``:
    a resumable checkpoint also holds the RNG states): only your own checkpoints, as a ``.pt``
    from elsewhere can run code when loaded. Take others' weights as ``.safetensors``.
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return load_checkpoint(path)["ema"]


class Trainer:
    """One training run: networks, optimisers, data, EMA, logging and checkpoints."""

    def __init__(self, cfg: TrainConfig, device: str = "cpu") -> None:
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.cfg, self.device = cfg, torch.device(device)
        self.spec = get_spec(cfg.model)
        self.run_dir = cfg.path(cfg.run_dir)
        self.amp = self.device.type == "cuda"
        if self.amp:
            torch.backends.cudnn.benchmark = True  # fixed crop shapes: let cuDNN pick the fastest convs
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.net = new_network(self.spec.arch, self.spec.scale, training=True).to(
            self.device, memory_format=self.memory_format
        )
        if cfg.init_from:
            parent = _parent_weights(cfg.path(cfg.init_from))
            if cfg.init_deepen:
                init_deepened(self.net, parent)
            else:
                init_matching(self.net, parent)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        self.opt = self._adam(self.net, cfg.pixel.lr, cfg.pixel.betas, cfg.pixel.weight_decay)
        p = cfg.pixel
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, cosine_schedule(p.warmup, p.steps, p.lr, p.lr_min, p.decay_start)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        images = load_folders([cfg.path(f) for f in cfg.data.train], self.spec.scale)
        self.sampler = CropSampler(
            images,
            patch=cfg.data.patch,
            scale=self.spec.scale,
            colour=self.spec.colour,
            augment=cfg.data.augment,
            degradations=cfg.data.degrade,
            realistic=cfg.data.realistic,
            seed=cfg.seed,
        )
        self.gan = None
        if cfg.gan.steps > 0:
            self.gan = GanStage(cfg, self.net, self.device)
        self.step = 0
        self.best_psnr = -math.inf
        self.budget_steps: int | None = None  # the current stage's steps, when fitted to a time budget
        self.runlog = RunLog(self.run_dir)

    @staticmethod
    def _adam(net: nn.Module, lr: float, betas: tuple[float, float], wd: float) -> torch.optim.Adam:
        return torch.optim.Adam(net.parameters(), lr=lr, betas=betas, weight_decay=wd)

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step,
            "model": self.cfg.model,
            "arch": self.spec.arch,
            "net": self.net.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "best_psnr": self.best_psnr,
            "budget_steps": self.budget_steps,
            "config": dataclasses.asdict(self.cfg),
        }
        if self.gan is not None:
            state["gan"] = self.gan.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["arch"] != self.spec.arch:
            raise ValueError(f"checkpoint holds a {state['arch']!r} network, config wants {self.spec.arch!r}")
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        if self.gan is not None and "gan" in state:
            self.gan.load_state_dict(state["gan"])
        self.step, self.best_psnr = int(state["step"]), float(state["best_psnr"])
        if state.get("budget_steps"):
            self.set_stage_steps(int(state["budget_steps"]))
        set_rng_state(state["rng"])

    def save(self) -> Path:
        path = save_checkpoint(self.run_dir / f"step_{self.step:07d}.pt", self.state_dict())
        prune_checkpoints(self.run_dir, self.cfg.keep_ckpts)
        return path

    def resume(self, path: Path | None = None) -> bool:
        """Load ``path`` or the run's latest checkpoint; False when there is none."""
        path = path or latest_checkpoint(self.run_dir)
        if path is None:
            return False
        self.load_state_dict(load_checkpoint(path))
        self.runlog.truncate(self.step)
        log.info("resumed from %s at step %d", path, self.step)
        return True

    # ---- steps -------------------------------------------------------------------------------
    def forward(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The generator's HR prediction: base + residual for luma models, the output for RGB ones."""
        out = net(batch["lr"])
        return batch["base"] + out if self.spec.colour == "y" else out

    def _tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {
            k: torch.from_numpy(v)
            .to(self.device, non_blocking=True)
            .contiguous(memory_format=self.memory_format)
            for k, v in batch.items()
        }

    def pixel_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One stage-1 optimisation step; returns the loss."""
        p = self.cfg.pixel
        kind = p.switch_loss if self.step >= p.switch_at * p.steps else p.loss
        self.net.train()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            pred = self.forward(self.net, batch)
            loss = pixel_loss(kind, pred.float(), batch["hr"])
            if p.hf_weight > 0:
                loss = loss + p.hf_weight * high_frequency_loss(pred.float(), batch["hr"])
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if p.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.net.parameters(), p.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def update_ema(self) -> None:
        """EMA of parameters (decay ramps up from 0 over the first steps); buffers are copied."""
        decay = min(self.cfg.ema, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.net.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.ema.buffers(), self.net.buffers(), strict=True):
            e.copy_(b)

    def train_step(self) -> dict[str, float]:
        if self.device.type == "cuda":
            batch = self.sampler.batch_on(self.cfg.data.batch, self.device)
            batch = {k: v.contiguous(memory_format=self.memory_format) for k, v in batch.items()}
        else:
            batch = self._tensors(self.sampler.batch(self.cfg.data.batch))
        if self.gan is not None and self.step >= self.cfg.pixel.steps:
            stats = self.gan.step(self, batch)
        else:
            stats = self.pixel_step(batch)
        self.step += 1
        self.update_ema()
        return stats

    # ---- fitting the schedule to a time budget ---------------------------------------------------
    def set_stage_steps(self, steps: int) -> None:
        """Make the stage being trained ``steps`` long: its cosine decay ends there (warm-up unchanged).

        Only one-stage configs (a pixel run, or a GAN run with ``pixel.steps`` = 0) can be fitted.
        """
        cfg = self.cfg
        if self.gan is not None and cfg.pixel.steps > 0:
            raise ValueError("a time budget needs a one-stage config (pixel.steps = 0 or gan.steps = 0)")
        if self.gan is None:
            p = dataclasses.replace(cfg.pixel, steps=steps)
            self.cfg = dataclasses.replace(cfg, pixel=p)
            self.sched.lr_lambdas = [cosine_schedule(p.warmup, p.steps, p.lr, p.lr_min, p.decay_start)]
        else:
            g = dataclasses.replace(cfg.gan, steps=steps)
            self.cfg = dataclasses.replace(cfg, gan=g)
            self.gan.cfg = self.cfg
            for sched in (self.gan.sched_g, self.gan.sched_d):
                sched.lr_lambdas = [cosine_schedule(g.warmup, g.steps, g.lr, g.lr_min)]
        self.budget_steps = steps

    def fit_to_budget(self, seconds: float, calibration: int = 120) -> int:
        """Train ``calibration`` steps, time them, and set the stage's length so the run ends in ``seconds``.

        The first fifth of the calibration steps is not timed (cuDNN autotuning, allocations); a
        validation is timed once and 12 % of the time is kept back for validations and checkpoints.
        When calibration ends inside the warm-up, the schedule equals one configured with the fitted
        length from the start. A resumed run keeps the fitted length (it is in the checkpoint).
        Returns the fitted number of steps.
        """
        start = time.perf_counter()
        warm = max(1, calibration // 5)
        for _ in range(warm):
            self.train_step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(calibration - warm):
            self.train_step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        per_step = (time.perf_counter() - t0) / (calibration - warm)
        t0 = time.perf_counter()
        self.validate()
        per_val = time.perf_counter() - t0
        left = seconds - (time.perf_counter() - start)
        steps = self.step + int(0.88 * left / per_step)
        vals = steps // self.cfg.val_every + 1
        steps = self.step + int((0.88 * left - vals * per_val) / per_step)
        steps = max(self.step + 1, steps // 100 * 100)
        self.set_stage_steps(steps)
        log.info(
            "time budget %.0f s: %.1f ms/step, validation %.1f s -> %d steps in all",
            seconds,
            per_step * 1000,
            per_val,
            self.cfg.total_steps,
        )
        return self.cfg.total_steps

    # ---- validation and the loop ---------------------------------------------------------------
    def inference_net(self) -> nn.Module:
        """A CPU float32 copy of the EMA generator in eval mode with BN folded."""
        net = copy.deepcopy(self.ema).float().cpu().eval().to(memory_format=torch.contiguous_format)
        return fold_edge_blocks(fold_batchnorm(net))

    def validate(self) -> dict[str, Any]:
        """The EMA generator scored on ``data.val`` with the full protocol (torch backend, CPU)."""
        from vsr.evaluate import evaluate

        return evaluate(self.cfg.model, self.cfg.path(self.cfg.data.val), "torch", net=self.inference_net())

    def _validate_and_log(self, stats: dict[str, float]) -> None:
        res = self.validate()
        improved = res["psnr_y"] > self.best_psnr
        self.best_psnr = max(self.best_psnr, res["psnr_y"])
        self.runlog.append(
            step=self.step, stage=self.stage, val_psnr=f"{res['psnr_y']:.4f}", val_ssim=f"{res['ssim_y']:.5f}"
        )
        log.info(
            "step %d  val %s: %.3f dB / %.4f (best %.3f)",
            self.step,
            Path(res["data"]).name,
            res["psnr_y"],
            res["ssim_y"],
            self.best_psnr,
        )
        if improved:
            path = save_checkpoint(self.run_dir / "best.pt", self.state_dict())
            log.info("new best -> %s", path)

    @property
    def stage(self) -> int:
        """The stage of the step just completed (steps 1..pixel.steps are stage 1)."""
        return 1 if self.step <= self.cfg.pixel.steps or self.gan is None else 2

    def run(self, until: int | None = None) -> None:
        """Train until step ``until`` (default: the end of the schedule), logging and checkpointing."""
        cfg, end = self.cfg, min(until or self.cfg.total_steps, self.cfg.total_steps)
        window: list[float] = []
        t0 = time.perf_counter()
        while self.step < end:
            stats = self.train_step()
            window.append(stats["loss"])
            if self.step % cfg.log_every == 0 or self.step == end:
                ms = (time.perf_counter() - t0) * 1000.0 / len(window)
                lr = self.opt.param_groups[0]["lr"] if self.stage == 1 else self.gan.lr()  # type: ignore[union-attr]
                self.runlog.append(
                    step=self.step,
                    stage=self.stage,
                    loss=f"{np.mean(window):.6g}",
                    lr=f"{lr:.4g}",
                    ms_per_step=f"{ms:.1f}",
                    d_loss=stats.get("d_loss", ""),
                )
                log.info(
                    "step %d/%d  loss %.5g  lr %.3g  %.1f ms/step",
                    self.step,
                    cfg.total_steps,
                    np.mean(window),
                    lr,
                    ms,
                )
                window, t0 = [], time.perf_counter()
            if self.step % cfg.val_every == 0 or self.step == cfg.total_steps:
                self._validate_and_log(stats)
                self.runlog.plot()
            if self.step % cfg.ckpt_every == 0 or self.step == end:
                log.info("checkpoint %s", self.save())


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="a TOML file in training/configs/")
    ap.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (AMP on cuda)")
    ap.add_argument("--steps", type=int, default=None, help="stop at this step (the schedule is unchanged)")
    ap.add_argument("--run-dir", default=None, help="override the config's run_dir")
    ap.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="fit the schedule to this much wall-clock time: time the first steps, then set the "
        "stage's length so its cosine decay ends in time (one-stage configs; kept on --resume)",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    overrides = {"run_dir": args.run_dir} if args.run_dir else {}
    cfg = load_config(args.config, **overrides)
    trainer = Trainer(cfg, args.device)
    if args.resume and not trainer.resume():
        log.info("no checkpoint in %s; starting from scratch", trainer.run_dir)
    shutil.copy(args.config, trainer.run_dir / "config.toml")
    if args.minutes:
        if trainer.step > 0:
            log.info("--minutes ignored: a resumed run keeps the length it was fitted to")
        else:
            trainer.fit_to_budget(args.minutes * 60.0)
    trainer.run(args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
