"""INT8 for the CPU tier: ONNX Runtime static quantisation of a luma model, its speed and quality cost.

Quantises the model's ONNX export (QDQ, per-channel int8 weights, uint8 activations; calibrated
with MinMax on luma crops of the training images, the LR the model is trained on) in the variants
ONNX Runtime documents for x86 (U8S8, U8S8 with reduce_range for CPUs without VNNI, U8U8). Then,
interleaved in one process so the shared machine's load hits all alike: network-alone frames/s
at ``--size`` for torch channels_last fp32 (what ``auto`` runs), ONNX Runtime fp32 and each INT8
file; and Y-PSNR on ``--data`` through the same FrameAdapter as ``vsr eval``.

    python scripts/cpu_int8.py --model fast --size 320x180 --json docs/results/cpu_int8.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vsr.alloc import keep_freed_buffers
from vsr.backends import create_backend
from vsr.backends.onnx_backend import OnnxBackend
from vsr.evaluate import _image_paths, _score_one, load_image
from vsr.export import onnx_for
from vsr.imresize import imresize
from vsr.metrics import luma
from vsr.models.catalogue import get_spec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def calibration(images: list[Path], count: int, side: int) -> list[np.ndarray]:
    """``count`` (1, 1, side, side) luma/255 crops of the protocol LR of the training images."""
    rng = np.random.default_rng(0)
    out = []
    for path in rng.choice(images, size=count, replace=len(images) < count):
        lr = imresize(load_image(path), scale=0.25)
        y = luma(lr) / 255.0
        if min(y.shape) < side:
            continue
        i, j = rng.integers(0, y.shape[0] - side + 1), rng.integers(0, y.shape[1] - side + 1)
        out.append(np.ascontiguousarray(y[None, None, i : i + side, j : j + side], dtype=np.float32))
    return out


def quantise(src: Path, dst_dir: Path, crops: list[np.ndarray]) -> dict[str, Path]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(crops)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"input": x}

    pre = dst_dir / "pre.onnx"
    quant_pre_process(str(src), str(pre))
    variants = {
        "int8 u8s8": dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8),
        "int8 u8s8 reduce_range": dict(
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True
        ),
        "int8 u8u8": dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8),
    }
    out = {}
    for name, kw in variants.items():
        path = dst_dir / (name.replace(" ", "_") + ".onnx")
        quantize_static(
            str(pre),
            str(path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            **kw,
        )
        out[name] = path
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fast")
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--calib", type=int, default=64, help="calibration crops")
    ap.add_argument("--data", type=Path, nargs="+", default=[DATA / "val" / "Set5", DATA / "val" / "Set14"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    keep_freed_buffers()
    spec = get_spec(args.model)
    if spec.colour != "y":
        raise SystemExit(f"{args.model}: only the luma CPU models are quantised here")
    w, h = (int(v) for v in args.size.split("x"))
    train = [p for d in ("T91", "BSD200") for p in _image_paths(DATA / "train" / d)]
    with tempfile.TemporaryDirectory() as tmp:
        src = onnx_for(spec)
        files = {"onnx fp32": src, **quantise(src, Path(tmp), calibration(train, args.calib, 48))}
        backends = {"torch fp32 (channels_last)": create_backend("torch", spec, device="cpu")}
        backends.update(
            {name: OnnxBackend(spec, onnx_path=path, device="cpu") for name, path in files.items()}
        )
        x = np.random.default_rng(1).random((1, 1, h, w), dtype=np.float32)
        for b in backends.values():
            b._net(x)  # type: ignore[attr-defined]
        times: dict[str, list[float]] = {name: [] for name in backends}
        for _ in range(args.rounds):
            for name, b in backends.items():
                t0 = time.perf_counter()
                for _ in range(10):
                    b._net(x)  # type: ignore[attr-defined]
                times[name].append((time.perf_counter() - t0) / 10)
        report: dict[str, dict[str, float]] = {}
        for name, b in backends.items():
            row = {"net_fps": 1.0 / float(np.median(times[name]))}
            for data in args.data:
                scores = [_score_one(b, load_image(p), spec.scale)["psnr_y"] for p in _image_paths(data)]
                row[f"{data.name}_psnr_y"] = float(np.mean(scores))
            report[name] = row
    base = report["torch fp32 (channels_last)"]["net_fps"]
    print(f"{args.model} at {args.size}, network alone (median of {args.rounds} interleaved rounds):")
    cols = [f"{d.name}_psnr_y" for d in args.data]
    print("| variant | net fps | vs torch | " + " | ".join(d.name + " Y-PSNR" for d in args.data) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for name, row in report.items():
        psnrs = " | ".join(f"{row[c]:.2f}" for c in cols)
        print(f"| {name} | {row['net_fps']:.1f} | {row['net_fps'] / base:.2f}x | {psnrs} |")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "size": args.size, "rows": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
