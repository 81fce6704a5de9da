"""A user model's card: what ``vsr models add`` found in the file and measured, kept beside it.

Two files per model in the user catalogue (:mod:`vsr.models.user`): ``NAME.json`` (this
:class:`ModelCard`, machine-readable; its presence is what registers the model) and ``NAME.md``
(the same facts for people). Reading a card needs neither torch nor the model file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .external_info import ExternalInfo

__all__ = ["CARD_VERSION", "ModelCard", "Speed"]

CARD_VERSION = 1


@dataclass(frozen=True)
class Speed:
    """Frames/s of the model measured on this machine when it was added: ``fps`` over ``frames``
    timed frames of ``width`` x ``height`` input after a warm-up, on ``backend`` (torch or onnx)
    on ``device``, on a machine with ``cpus`` logical CPUs (None: unknown)."""

    fps: float
    backend: str
    device: str
    width: int
    height: int
    frames: int
    cpus: int | None = None

    def describe(self) -> str:
        """``12.3 frames/s (320x180 input, onnx on cpu, 8 frames, 16 CPUs)``."""
        return (
            f"{self.fps:.1f} frames/s ({self.width}x{self.height} input, {self.backend} on "
            f"{self.device}, {self.frames} frames, {self.cpus or '?'} CPUs)"
        )


@dataclass(frozen=True)
class ModelCard:
    """The facts ``vsr models add`` keeps about a user model.

    ``file``: the model file's name inside the user catalogue (``NAME`` plus its suffix);
    ``format``, ``arch`` ... ``sha256``: as :class:`~vsr.models.external_info.ExternalInfo` found
    them (the card is a file format of its own: its fields stay when ExternalInfo's change);
    ``source``: the path it was added from; ``added_at``: ISO 8601 UTC; ``vsr_version``: the vsr
    that added it; ``speed``: None when ``--no-measure`` skipped the measurement.
    """

    name: str
    file: str
    format: str
    arch: str
    scale: int
    in_channels: int
    out_channels: int
    size_multiple: int
    min_size: int
    fp16: bool
    bf16: bool
    params: int
    sha256: str
    source: str
    added_at: str
    vsr_version: str
    speed: Speed | None = None
    card_version: int = CARD_VERSION

    @classmethod
    def from_info(cls, info: ExternalInfo, name: str, file: str, **rest: Any) -> ModelCard:
        """A card for ``info``; ``rest``: ``source``, ``added_at``, ``vsr_version``, ``speed``."""
        return cls(name=name, file=file, **{key: getattr(info, key) for key in _FACTS}, **rest)

    def info(self, folder: Path) -> ExternalInfo:
        """The :class:`ExternalInfo` of the card's file in ``folder`` (nothing is read)."""
        return ExternalInfo(path=folder / self.file, **{name: getattr(self, name) for name in _FACTS})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        """The card in ``path``; :class:`ModelError` (one line) when it is not a valid card."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("card_version", CARD_VERSION) > CARD_VERSION:
                raise ModelError(f"user model card {path} is from a newer vsr ({doc.get('vsr_version')})")
            speed = doc.pop("speed", None)
            return cls(**doc, speed=Speed(**speed) if speed else None)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ModelError(f"user model card {path} cannot be read: {exc}") from exc

    def to_markdown(self) -> str:
        """The human-readable card (``NAME.md``)."""
        rows = [
            ("architecture", self.arch),
            ("format", "ONNX (ONNX Runtime)" if self.format == "onnx" else "PyTorch (spandrel)"),
            ("scale", f"{self.scale}x"),
            ("channels", f"{self.in_channels} in, {self.out_channels} out"),
            ("parameters", f"{self.params:,}" if self.params else "unknown"),
            ("input sides", _sides(self.size_multiple, self.min_size)),
            ("half precision", _precisions(self.fp16, self.bf16)),
            ("speed on this machine", self.speed.describe() if self.speed else "not measured"),
            ("file", self.file),
            ("sha256", f"`{self.sha256}`"),
            ("added from", self.source),
            ("added", f"{self.added_at} by vsr {self.vsr_version}"),
        ]
        lines = [f"# {self.name}", "", "| | |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in rows]
        lines += [
            "",
            f"Run it: `vsr upscale IN -o OUT --model {self.name}`; remove it: `vsr models remove {self.name}`.",
        ]
        return "\n".join(lines) + "\n"


_FACTS = (
    "format",
    "arch",
    "scale",
    "in_channels",
    "out_channels",
    "size_multiple",
    "min_size",
    "fp16",
    "bf16",
    "params",
    "sha256",
)
"""The card's fields that come from (and give back) an :class:`ExternalInfo`."""


def _precisions(fp16: bool, bf16: bool) -> str:
    found = [p for p, ok in (("fp16", fp16), ("bf16", bf16)) if ok]
    return ", ".join(found) + " safe" if found else "float32 only"


def _sides(multiple: int, minimum: int) -> str:
    needs = ([f"multiples of {multiple}"] if multiple > 1 else []) + (
        [f"at least {minimum} px"] if minimum else []
    )
    return ", ".join(needs) + " (vsr pads)" if needs else "any"
