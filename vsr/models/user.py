"""The user catalogue: model files a user added with ``vsr models add``, kept outside the package.

Where: ``$VSR_MODELS_DIR``, else ``$XDG_DATA_HOME/vsr/models``, else ``~/.local/share/vsr/models``
(:func:`user_models_dir`). Each model is three files there: ``NAME.pth`` (or whatever suffix the
file had: the model, copied in), ``NAME.json`` (its :class:`~vsr.models.card.ModelCard`, which
registers it) and ``NAME.md`` (the card for people). :func:`vsr.models.catalogue.get_spec` asks
:func:`find_user_spec` after the shipped entries, so a user model's name works wherever a catalogue
name does. Adding and removing: :mod:`vsr.models.install`.

Reading the catalogue needs neither torch, spandrel nor onnxruntime: the specs come from the cards.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError, ModelError
from .card import MAX_NAME, NAME_RULE, ModelCard, is_valid_name
from .external import external_spec
from .external_info import SUFFIXES
from .integrity import weights_state
from .spec import ModelSpec

__all__ = [
    "NAME_RULE",
    "UserModel",
    "check_name",
    "default_name",
    "find_user_model",
    "find_user_spec",
    "user_model_specs",
    "user_models",
    "user_models_dir",
]

log = logging.getLogger(__name__)


def user_models_dir() -> Path:
    """``$VSR_MODELS_DIR``, else ``$XDG_DATA_HOME/vsr/models``, else ``~/.local/share/vsr/models``
    (the folder need not exist yet)."""
    explicit = os.environ.get("VSR_MODELS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "vsr" / "models"


def check_name(name: str) -> str:
    """``name`` when it may name a user model; else :class:`ConfigError` saying the rule."""
    if not is_valid_name(name):
        raise ConfigError(f"model name {name!r} is not allowed: use {NAME_RULE} (at most {MAX_NAME})")
    if name.endswith(SUFFIXES):
        raise ConfigError(f"model name {name!r} ends like a model file; drop the {Path(name).suffix}")
    return name


def default_name(path: str | os.PathLike[str]) -> str:
    """The name a file gets without ``--name``: its stem, lower-cased, other characters as ``-``
    (``4x_Nomos8k-SPAN.pth`` -> ``4x_nomos8k-span``)."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", Path(path).stem.lower()).lstrip("._-")
    return stem[:MAX_NAME].rstrip("._-") or "model"


@dataclass(frozen=True)
class UserModel:
    """One model of the user catalogue: its ``card`` and the ``folder`` it lives in."""

    card: ModelCard
    folder: Path

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def path(self) -> Path:
        """The model file."""
        return self.folder / self.card.file

    @property
    def card_path(self) -> Path:
        return self.folder / f"{self.name}.json"

    @property
    def spec(self) -> ModelSpec:
        """The model as a catalogue entry: the card's facts, the file in the user catalogue, its
        sha256 (``weights_state`` says ``corrupt`` when the file changed since it was added)."""
        card = self.card
        description = f"{card.arch} {card.scale}x, added from {card.source}"
        return replace(external_spec(card.info(self.folder), card.name), description=description)


def user_models(folder: Path | None = None) -> list[UserModel]:
    """Every model of the user catalogue, by name; a card that cannot be read is skipped (logged)."""
    folder = folder or user_models_dir()
    found: list[UserModel] = []
    for card_path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        if not is_valid_name(card_path.stem):
            continue
        try:
            found.append(_read(card_path))
        except ModelError as exc:
            log.warning("%s; skipping it", exc)
    return found


def find_user_model(name: str, folder: Path | None = None) -> UserModel | None:
    """The user model called ``name`` (its card read), or None when there is none."""
    if not is_valid_name(name):
        return None
    card_path = (folder or user_models_dir()) / f"{name}.json"
    return _read(card_path) if card_path.is_file() else None


def _read(card_path: Path) -> UserModel:
    card = ModelCard.read(card_path)
    if card.name != card_path.stem:
        raise ModelError(f"user model card {card_path} names another model ({card.name!r})")
    return UserModel(card, card_path.parent)


def user_model_specs() -> list[ModelSpec]:
    """The :class:`ModelSpec` of every user model (no file is checked; ``weights_state`` does)."""
    return [m.spec for m in user_models()]


def find_user_spec(name: str) -> ModelSpec | None:
    """The spec of user model ``name``, or None when there is none. Before any use, the model
    file must still be the one that was added: :class:`ModelError` (one line) when it is missing
    or its sha256 differs from the card's (hashed once per path, size and mtime)."""
    model = find_user_model(name)
    if model is None:
        return None
    spec = model.spec
    state = weights_state(model.path, model.card.sha256)
    if state == "missing":
        raise ModelError(
            f"user model {name!r}: its file {model.path} is missing; "
            f"add it again (`vsr models add FILE --name {name} --force`) or `vsr models remove {name}`"
        )
    if state == "corrupt":
        raise ModelError(
            f"user model {name!r}: {model.path} changed since it was added (sha256 differs from its "
            f"card); add it again with `vsr models add FILE --name {name} --force`"
        )
    return spec
