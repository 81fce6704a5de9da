"""A tiny ONNX model file for tests: :func:`tiny_onnx` (needs torch; the caller skips without it)."""

from __future__ import annotations

import warnings
from pathlib import Path


def tiny_onnx(path: Path, scale: int = 2) -> Path:
    """A ``scale``x RGB ONNX model (a 3x3 conv and a PixelShuffle), any input size, at ``path``."""
    import torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 3 * scale * scale, 3, padding=1), torch.nn.PixelShuffle(scale)
    ).eval()
    axes = {"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "H", 3: "W"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter, asked for
        torch.onnx.export(
            net, (torch.rand(1, 3, 8, 8),), str(path), input_names=["input"], output_names=["output"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    return path
