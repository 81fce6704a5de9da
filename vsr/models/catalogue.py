"""The model catalogue: one explicit list of every model vsr knows, with the facts about each.

Importing this module needs neither torch nor the weights; :func:`build_model` imports torch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, ModelError
from .entries import CATALOGUE, LIVE_MODEL
from .integrity import file_sha256
from .spec import WEIGHTS_DIR, Arch, ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = [
    "CATALOGUE",
    "LIVE_MODEL",
    "WEIGHTS_DIR",
    "ModelSpec",
    "build_model",
    "check_fallbacks",
    "fallback_chain",
    "file_sha256",
    "get_spec",
    "model_names",
]


def check_fallbacks(specs: tuple[ModelSpec, ...]) -> None:
    """Raise :class:`ConfigError` unless every ``fallback`` names another entry of the same scale,
    no chain loops, and every chain ends in a bicubic entry (the floor a live run can always meet).
    Names must be unique."""
    by_name: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ConfigError(f"model {spec.name!r} is listed twice")
        by_name[spec.name] = spec
    for spec in specs:
        seen = [spec.name]
        cur = spec
        while cur.fallback is not None:
            nxt = by_name.get(cur.fallback)
            if nxt is None:
                raise ConfigError(f"model {cur.name!r} falls back to unknown model {cur.fallback!r}")
            if nxt.scale != cur.scale:
                raise ConfigError(
                    f"model {cur.name!r} (x{cur.scale}) falls back to {nxt.name!r} (x{nxt.scale})"
                )
            if nxt.name in seen:
                raise ConfigError(f"fallback loop: {' -> '.join([*seen, nxt.name])}")
            seen.append(nxt.name)
            cur = nxt
        if cur.arch != "bicubic":
            raise ConfigError(f"the fallback chain of {spec.name!r} ends in {cur.name!r}, not in bicubic")


check_fallbacks(CATALOGUE)


def fallback_chain(name: str) -> tuple[str, ...]:
    """``name`` and the models it degrades to, best first, ending in ``bicubic``.

    ``compact`` -> ``("compact", "fast-plus", "fast", "fast-lite", "fast-tiny", "bicubic")``;
    ``fast-stream`` -> ``("fast-stream", "fast-lite-stream", "fast-tiny-stream", "bicubic")``.
    """
    chain = [get_spec(name)]
    while chain[-1].fallback is not None:
        chain.append(get_spec(chain[-1].fallback))
    return tuple(s.name for s in chain)


def model_names() -> list[str]:
    """Names of every catalogue model, in catalogue order."""
    return [s.name for s in CATALOGUE]


def get_spec(name: str) -> ModelSpec:
    """The model called ``name``: a shipped catalogue entry, else a user-catalogue model
    (:mod:`vsr.models.user`), else a model file at that path (:mod:`vsr.models.external`,
    inspected once per path, size and mtime). Raises :class:`ConfigError` naming the choices, or
    :class:`ModelError` for a model file vsr cannot run."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    user = _user_spec(name)
    if user is not None:
        return user
    from .external import SUFFIXES, spec_for_path

    if Path(name).suffix.lower() in SUFFIXES:  # a model file, or a clear "does not exist"
        return spec_for_path(name)
    raise ConfigError(
        f"unknown model {name!r}; choose one of: {', '.join(model_names())}, "
        f"or a model file ({', '.join(SUFFIXES)})"
    )


def _user_spec(name: str) -> ModelSpec | None:
    """The user-catalogue model called ``name``, or None (also while vsr.models.user is absent)."""
    try:
        from .user import find_user_spec
    except ModuleNotFoundError as exc:  # only the module itself missing; its own bugs still raise
        if exc.name != f"{__package__}.user":
            raise
        return None
    return find_user_spec(name)


def new_network(arch: Arch, scale: int = 4, *, training: bool = False) -> nn.Module:
    """A randomly initialised network of the given architecture and scale (float32, train mode).

    ``training=True`` gives the form that trains (``ecb``: edge-oriented blocks that
    :func:`~vsr.models.ecb.fold_edge_blocks` folds into the shipped plain convs); the other
    architectures train as they run.
    """
    from .arch import CompactNet, FastNet, SRResNet
    from .ecb import EcbNet

    if arch == "fast":
        return FastNet(scale=scale)
    if arch == "fast-lite":
        return FastNet(widths=(48, 32, 32), scale=scale)
    if arch == "fast-tiny":
        return FastNet(widths=(32, 32), scale=scale)
    if arch == "fast-plus":
        return FastNet(widths=(48, 32, 32, 32, 32, 32, 32), scale=scale)
    if arch == "compact":
        return CompactNet(scale=scale)
    if arch == "ecb":
        return EcbNet(scale=scale, training=training)
    if arch == "srresnet" and scale == 4:
        return SRResNet()
    raise ConfigError(f"architecture {arch!r} has no network")


def build_model(
    spec: ModelSpec | str, *, random_init: bool = False, weights: Path | None = None
) -> nn.Module:
    """The ready-for-inference network of a catalogue model (eval mode, BN folded, float32, CPU).

    Loads the shipped ``.safetensors`` (no pickle) and checks its sha256 against the catalogue.
    ``weights`` loads another file instead (no checksum check); ``random_init`` loads nothing
    (for tests and training). A model whose weights are not shipped is refused with
    :class:`ModelError`.
    """
    from safetensors.torch import load_file

    from .arch import fold_batchnorm

    spec = get_spec(spec) if isinstance(spec, str) else spec
    if spec.arch in ("spandrel", "onnx-file") and not random_init:
        from .external import load_external_module

        return load_external_module(spec if weights is None else replace(spec, path=Path(weights)))
    net = new_network(spec.arch, spec.scale)
    if not random_init:
        path = weights or spec.weights_path
        if path is None or not Path(path).is_file():
            raise ModelError(
                f"model {spec.name!r} has no trained weights in this build of vsr "
                f"(expected {path}); choose another model (see `vsr models`)"
            )
        if weights is None and spec.sha256 and file_sha256(Path(path)) != spec.sha256:
            raise ModelError(f"weights file {path} does not match the catalogue checksum; reinstall vsr")
        try:
            state = load_file(str(path))
            net.load_state_dict(state)
        except Exception as exc:  # safetensors / torch raise several types
            raise ModelError(f"cannot load weights {path}: {exc}") from exc
    net.eval()
    fold_batchnorm(net)
    return net
