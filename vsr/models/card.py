"""A user model's card: what ``vsr models add`` found in the file and measured, kept beside it.

Two files per model in the user catalogue (:mod:`vsr.models.user`): ``NAME.json`` (this
:class:`ModelCard`, machine-readable; its presence is what registers the model) and ``NAME.md``
(the same facts for people). Reading a card needs neither torch nor the model file.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .external_info import SUFFIXES, ExternalInfo

__all__ = ["CARD_VERSION", "NAME_RULE", "ModelCard", "Speed", "is_valid_name"]

CARD_VERSION = 1

NAME_RULE = "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_NAME = 64


def is_valid_name(name: object) -> bool:
    """Whether ``name`` may name a user model (:data:`NAME_RULE`, at most :data:`MAX_NAME`)."""
    return isinstance(name, str) and len(name) <= MAX_NAME and _NAME.fullmatch(name) is not None


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
        """The card in ``path``; :class:`ModelError` (one line) when it is not a valid card.

        A card is a file anyone can plant in the catalogue folder, so nothing in it is trusted:
        every field must have its type, and ``file`` must be ``name`` (a valid model name) plus
        one of :data:`~vsr.models.external_info.SUFFIXES` matching ``format``, so that the model
        file it names is always ``folder/NAME.suffix`` (never ``../x`` nor an absolute path).
        """
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            version = doc.get("card_version", CARD_VERSION)
            if type(version) is int and version > CARD_VERSION:
                raise ModelError(f"user model card {path} is from a newer vsr ({doc.get('vsr_version')})")
            speed = doc.pop("speed", None)
            if speed is not None:
                if not isinstance(speed, dict):
                    raise ValueError("speed is not an object")
                speed = Speed(**speed)
                _check_types(speed)
            card = cls(**doc, speed=speed)
            _check_types(card)
            _check_values(card)
            return card
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


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "int | None": (int, type(None)),
    "Speed | None": (Speed, type(None)),
}
"""The accepted Python types of each annotation the card's dataclasses use (as strings, with
``from __future__ import annotations``)."""


def _check_types(obj: ModelCard | Speed) -> None:
    """ValueError naming the first field of ``obj`` whose value has the wrong type (a bool is no
    int here, though Python says it is)."""
    for field in fields(obj):
        value = getattr(obj, field.name)
        allowed = _TYPES[str(field.type)]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{field.name} is {type(value).__name__} {value!r}, not {field.type}")


def _check_values(card: ModelCard) -> None:
    """ValueError when the card's name, file or numbers are not ones ``vsr models add`` writes."""
    if not is_valid_name(card.name):
        raise ValueError(f"name {card.name!r} is not a model name")
    suffix = card.file[len(card.name) :]
    if not card.file.startswith(card.name) or suffix not in SUFFIXES:
        raise ValueError(f"file {card.file!r} is not {card.name} plus one of {', '.join(SUFFIXES)}")
    if card.format not in ("torch", "onnx") or (suffix == ".onnx") != (card.format == "onnx"):
        raise ValueError(f"format {card.format!r} does not fit file {card.file!r}")
    if card.scale < 1 or card.size_multiple < 1 or card.min_size < 0 or card.params < 0:
        raise ValueError("scale, size_multiple, min_size or params out of range")
    if card.in_channels not in (1, 3) or card.out_channels not in (1, 3):
        raise ValueError(f"channels {card.in_channels} in, {card.out_channels} out (1 or 3 each)")


def _precisions(fp16: bool, bf16: bool) -> str:
    found = [p for p, ok in (("fp16", fp16), ("bf16", bf16)) if ok]
    return ", ".join(found) + " safe" if found else "float32 only"


def _sides(multiple: int, minimum: int) -> str:
    needs = ([f"multiples of {multiple}"] if multiple > 1 else []) + (
        [f"at least {minimum} px"] if minimum else []
    )
    return ", ".join(needs) + " (vsr pads)" if needs else "any"
