"""Which catalogue model runs for an output size the user asked for without naming a model.

A network trained for the scale asked for beats a larger one followed by a resize: ``--scale 2``
with the default model runs the native 2x ``fast-x2`` (the same CPU tier) rather than ``fast``
shrunk by the writer; a tier with no 2x entry runs its 4x model and the writer shrinks the output.
"""

from __future__ import annotations

from .catalogue import CATALOGUE, ModelSpec, get_spec

__all__ = ["choose_model_for_scale"]


def _family(base: ModelSpec, catalogue: tuple[ModelSpec, ...]) -> list[ModelSpec]:
    """``base`` and the entries of its tier and colour whose weights are here (``fast`` and the
    2x ``fast-x2`` are both the CPU luma tier, though their architectures differ)."""
    kin = [s for s in catalogue if s.tier == base.tier and s.colour == base.colour and s.has_weights]
    return kin if base in kin else [base, *kin]


def choose_model_for_scale(scale: float, preferred: str, catalogue: tuple[ModelSpec, ...] = CATALOGUE) -> str:
    """The model to run for an output ``scale`` x the input (2, 3, 4, or a ratio like 2.25 from
    ``--height``), when the user named none and ``preferred`` is the default.

    Among ``preferred`` and the entries of its tier and colour (weights present), the
    smallest native scale that reaches ``scale`` wins (shrinking a model's output loses little,
    enlarging it is interpolation); if none reaches it, the largest. Among entries of that scale,
    ``preferred`` itself, then one whose name extends it (``fast-stream`` -> ``fast-stream-x2``),
    then catalogue order. Raises :class:`~vsr.errors.ConfigError` for an unknown ``preferred``.
    """
    base = get_spec(preferred)
    kin = _family(base, catalogue)
    reach = [s.scale for s in kin if s.scale >= scale - 1e-9]
    best = min(reach) if reach else max(s.scale for s in kin)
    same = [s for s in kin if s.scale == best]
    if base in same:
        return base.name
    same.sort(key=lambda s: not s.name.startswith(base.name))
    return same[0].name
