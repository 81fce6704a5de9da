"""Export a training checkpoint: ``python -m training.export --checkpoint runs/fast/best.pt --model fast``.

Writes ``vsr/weights/NAME.safetensors`` (the EMA generator, unfolded state dict, float32, what
:func:`vsr.models.catalogue.build_model` loads), an ONNX file via :func:`vsr.export.export_onnx`
checked for parity against torch, and the model card ``vsr/weights/NAME.md`` with the measured
protocol scores; prints the sha256 to paste into the catalogue.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vsr.models.catalogue import WEIGHTS_DIR, ModelSpec, build_model, file_sha256, get_spec, new_network
from vsr.models.ecb import fold_edge_blocks

from .checkpoint import load_checkpoint
from .config import REPO_ROOT

__all__ = ["count_macs", "export_checkpoint", "onnx_parity", "save_weights"]

log = logging.getLogger("training.export")

DEFAULT_EVAL = ("../shared/data/val/Set5", "../shared/data/val/Set14", "../shared/data/val/FFHQ10")


def save_weights(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Save a state dict as float32 contiguous safetensors (no pickle) at ``path``."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in state.items()}
    save_file(tensors, str(path))
    return path


def count_macs(net: nn.Module, channels: int, size: int = 32) -> float:
    """Multiply-accumulates of ``net``'s convolutions and linear layers per *input* pixel."""
    total = 0

    def hook(m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total += out.numel() * k
        elif isinstance(m, nn.Linear):
            total += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net(torch.zeros(1, channels, size, size))
    finally:
        for h in handles:
            h.remove()
    return total / (size * size)


def onnx_parity(net: nn.Module, spec: ModelSpec, onnx_path: Path, *, seed: int = 0) -> float:
    """Max abs difference, on the 0..255 scale, between torch and ONNX Runtime on random input."""
    import onnxruntime as ort

    channels = 1 if spec.colour == "y" else 3
    x = np.random.default_rng(seed).random((2, channels, 37, 53), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    return float(np.max(np.abs(got - ref)) * 255.0)


def _scores(spec: ModelSpec, weights: Path, datasets: list[Path], backend: str) -> list[dict[str, Any]]:
    from vsr.evaluate import evaluate

    results = []
    for data in datasets:
        if not data.is_dir():
            log.warning("skipping evaluation on %s: not found", data)
            continue
        res = evaluate(spec.name, data, backend, weights=weights)
        log.info(
            "%s: %.3f dB / %.4f (bicubic %.3f)",
            data.name,
            res["psnr_y"],
            res["ssim_y"],
            res["bicubic_psnr_y"],
        )
        results.append(res)
    return results


def _recipe(cfg: dict[str, Any] | None) -> list[str]:
    """Card lines with the recipe recorded in the checkpoint (absent in old checkpoints)."""
    if not cfg:
        return []
    d, p = cfg["data"], cfg["pixel"]
    lines = []
    if p["steps"]:
        decay = (
            f"held, then cosine from step {p['decay_start']:,}"
            if p["decay_start"] > p["warmup"]
            else "cosine"
        )
        lines.append(
            f"- recipe: {d['patch']} px LR crops x {d['batch']} per step; {p['loss']} loss, {p['switch_loss']} "
            f"from {p['switch_at']:.0%} of {p['steps']:,} steps; Adam lr {p['lr']:g} ({p['warmup']} warm-up "
            f"steps, {decay}, to {p['lr_min']:g}); EMA {cfg['ema']} of the weights (exported)"
        )
    if cfg.get("init_from"):
        lines.append(f"- initialised from the EMA generator of `{cfg['init_from']}`")
    if cfg["gan"]["steps"]:
        g = cfg["gan"]
        lines.append(
            f"- adversarial stage: {g['steps']:,} steps of {d['patch']} px LR crops x {d['batch']}; Adam lr "
            f"{g['lr']:g} (cosine to {g['lr_min']:g}); generator loss {g['pixel_weight']:g} x {g['pixel_loss']} "
            f"+ {g['content_weight']:g} x VGG19 phi_5,4 + {g['adv_weight']:g} x adversarial "
            f"({'relativistic average' if g['relativistic'] else 'standard'} GAN); EMA {cfg['ema']} (exported)"
        )
    return lines


def _form(spec: ModelSpec) -> str:
    """How the shipped state dict relates to the trained network."""
    if spec.arch == "ecb":
        return "folded (edge-oriented training blocks summed into plain 3x3 convs)"
    return "unfolded (BN folded at load)"


def _card(spec: ModelSpec, ckpt: dict[str, Any], facts: dict[str, Any], scores: list[dict[str, Any]]) -> str:
    rows = [
        f"| {Path(r['data']).name} | {r['images']} | {r['psnr_y']:.2f} / {r['ssim_y']:.4f} "
        f"| {r['bicubic_psnr_y']:.2f} / {r['bicubic_ssim_y']:.4f} | {r['psnr_y'] - r['bicubic_psnr_y']:+.2f} |"
        for r in scores
    ]
    cfg = facts.get("config", "")
    return "\n".join(
        [
            f"# vsr model card: `{spec.name}`",
            "",
            f"{spec.description}. Architecture `{spec.arch}`, {spec.scale}x, input `{spec.colour}`.",
            "",
            f"- weights: `{facts['file']}` (EMA generator, {_form(spec)} state dict, float32 safetensors)",
            f"- sha256: `{facts['sha256']}`",
            f"- parameters: {facts['params']:,}; MACs per input pixel: {facts['macs']:,.0f}",
            f"- training: step {ckpt['step']:,} of the run; data T91 + BSD200 (291 HR images), "
            f"LR by MATLAB-bicubic x1/{spec.scale} on uint8, random crops with flips and 90-degree rotations",
            f"- training config: `{cfg}`" if cfg else "- training config: (not recorded)",
            *_recipe(ckpt.get("config")),
            *([f"- note: {facts['note']}"] if facts.get("note") else []),
            f"- ONNX parity (torch vs ONNX Runtime, random input): max abs error {facts['parity']:.2e} on 0..255",
            "",
            f"## Measured quality (SR protocol: mod-crop {spec.scale}, MATLAB-bicubic LR, BT.601 Y, "
            f"{spec.scale} px border)",
            "",
            f"Backend: {scores[0]['backend'] if scores else '-'}.",
            "",
            "| data | images | Y-PSNR / SSIM | bicubic (MATLAB) | gain dB |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "## Commands",
            "",
            f"    {facts['train_cmd']}",
            f"    {facts['export_cmd']}",
            "",
            f"Exported {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
        ]
    )


def _facts(
    net: nn.Module, spec: ModelSpec, weights: Path, onnx_path: Path, parity: float, config: str
) -> dict[str, Any]:
    """What the model card records about an exported network."""
    config = config or f"training/configs/{spec.name}.toml"
    return {
        "file": weights.name,
        "sha256": file_sha256(weights),
        "params": sum(p.numel() for p in net.parameters()),
        "macs": count_macs(net, 1 if spec.colour == "y" else 3),
        "parity": parity,
        "onnx": str(onnx_path),
        "config": config,
        "train_cmd": f"python -m training.train --config {config}",
        "export_cmd": "python -m training.export " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }


def export_checkpoint(
    checkpoint: Path,
    model: str,
    *,
    out_dir: Path = WEIGHTS_DIR,
    onnx_path: Path | None = None,
    eval_data: list[Path] | None = None,
    backend: str = "torch",
    config: str = "",
    note: str = "",
) -> dict[str, Any]:
    """Write the weights, ONNX file and model card of ``checkpoint``; returns what was done.

    Raises ``ValueError`` when the checkpoint's architecture is not the model's or the ONNX parity
    error reaches 1e-3 (0..255 scale).
    """
    spec = get_spec(model)
    ckpt = load_checkpoint(checkpoint)
    if ckpt["arch"] != spec.arch:
        raise ValueError(
            f"checkpoint {checkpoint} holds a {ckpt['arch']!r} network, model {model!r} is {spec.arch!r}"
        )
    net = new_network(spec.arch, spec.scale, training=True)
    net.load_state_dict(ckpt["ema"])
    fold_edge_blocks(net)  # training-only branches -> the plain convs that ship (no-op for others)
    weights = save_weights(net.state_dict(), Path(out_dir) / (spec.weights or f"{spec.name}.safetensors"))
    loaded = build_model(spec, weights=weights)  # proves the catalogue loads it; BN folded, eval
    from vsr.export import export_onnx

    onnx_path = export_onnx(loaded, spec, onnx_path or Path(checkpoint).with_name(f"{spec.name}.onnx"))
    parity = onnx_parity(loaded, spec, onnx_path)
    if not parity < 1e-3:
        raise ValueError(f"ONNX parity failed: max abs error {parity:.3g} on 0..255 (limit 1e-3)")
    facts = {**_facts(loaded, spec, weights, onnx_path, parity, config), "note": note}
    datasets = [REPO_ROOT / d for d in DEFAULT_EVAL] if eval_data is None else eval_data
    scores = _scores(spec, weights, datasets, backend)
    card = Path(out_dir) / f"{spec.name}.md"
    card.write_text(_card(spec, ckpt, facts, scores))
    return {**facts, "weights": str(weights), "card": str(card), "step": ckpt["step"], "scores": scores}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="e.g. runs/fast/best.pt")
    ap.add_argument("--model", required=True, help="catalogue model name (fast, compact, srresnet, srgan)")
    ap.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR, help="where NAME.safetensors and NAME.md go")
    ap.add_argument("--onnx", type=Path, default=None, help="ONNX path (default: beside the checkpoint)")
    ap.add_argument(
        "--eval", type=Path, nargs="*", default=None, help="HR folders to score (default Set5/Set14/FFHQ10)"
    )
    ap.add_argument("--backend", default="torch", help="backend for the scores (torch, onnx)")
    ap.add_argument("--config", default="", help="the training config, recorded in the card")
    ap.add_argument("--note", default="", help="a line for the card (e.g. how the run was resumed)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    res = export_checkpoint(
        args.checkpoint, args.model, out_dir=args.out_dir, onnx_path=args.onnx,
        eval_data=args.eval, backend=args.backend, config=args.config, note=args.note,
    )  # fmt: skip
    print(
        f"weights  {res['weights']}\ncard     {res['card']}\nonnx     {res['onnx']} (parity {res['parity']:.2e})"
    )
    print(f"sha256   {res['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
