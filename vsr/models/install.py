"""Adding a model file to the user catalogue and removing it (``vsr models add`` / ``remove``).

Adding inspects the file (:func:`~vsr.models.external.inspect_model_file`; nothing in it runs
before it is recognised), copies it into :func:`~vsr.models.user.user_models_dir` under a temporary
name, checks the copy's sha256, times it (:func:`~vsr.models.speed.measure_speed`, on the copy),
then renames it into place and writes its card: ``NAME.md`` first, ``NAME.json`` last, as the
JSON card is what registers the model. A failure at any step leaves no new model file or card
behind; a ``--force`` add that fails leaves the model it was replacing as it was. Temporary files
(``.NAME.*.part*``) an add killed half way left are swept by a later add of that name after an hour.
Removing deletes the JSON card first, so a half-removed model is never listed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError, ModelError, VsrError
from ..version import __version__
from .card import ModelCard, Speed
from .entries import CATALOGUE
from .external import external_spec, inspect_model_file
from .external_info import SUFFIXES, ExternalInfo
from .integrity import file_sha256
from .speed import measure_speed
from .user import UserModel, check_name, default_name, user_models_dir

__all__ = ["add_user_model", "remove_user_model"]

_FILE_MODE = 0o644  # as a copy would have it (mkstemp makes its files 0600)


def add_user_model(
    path: str | os.PathLike[str],
    name: str | None = None,
    *,
    measure: bool = True,
    force: bool = False,
    folder: Path | None = None,
) -> UserModel:
    """Add the model file ``path`` to the user catalogue as ``name`` (default: its sanitised stem).

    Refused with one line: a name against the rule or taken by a shipped model, a user model of
    that name (unless ``force``, which replaces it), a file vsr cannot run (:class:`ModelError`).
    ``measure``: time the model on this machine for the card (see :mod:`vsr.models.speed`).
    """
    name = check_name(name if name is not None else default_name(path))
    _refuse_shipped(name, "choose another --name")
    folder = folder or user_models_dir()
    _refuse_existing(name, folder, force)
    info = inspect_model_file(path)
    folder.mkdir(parents=True, exist_ok=True)
    _sweep_stale(folder, name)
    suffix = Path(path).suffix.lower()
    copy = _copy_checked(Path(path), folder, name, suffix, info.sha256)
    target, md = folder / f"{name}{suffix}", folder / f"{name}.md"
    aside: list[tuple[Path, Path]] = []
    try:
        speed = _measure(info, copy, name) if measure else None
        card = ModelCard.from_info(
            info,
            name,
            target.name,
            source=str(Path(path).resolve()),
            added_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            vsr_version=__version__,
            speed=speed,
        )
        # A --force add keeps the model it replaces (any suffix) and its .md as backups until the
        # new JSON card is in place, and puts them back when any step fails.
        _set_aside([*(folder / f"{name}{s}" for s in SUFFIXES), md], folder, name, aside)
        try:
            os.replace(copy, target)
            _write_atomic(md, card.to_markdown())
            _write_atomic(folder / f"{name}.json", card.to_json())
        except BaseException:
            for leftover in (target, md):
                leftover.unlink(missing_ok=True)
            _restore(aside)
            aside.clear()
            raise
    finally:
        copy.unlink(missing_ok=True)  # gone already once renamed into place
    for _, backup in aside:
        backup.unlink(missing_ok=True)
    return UserModel(card, folder)


def remove_user_model(name: str, folder: Path | None = None) -> str:
    """Remove user model ``name`` (its file and card); returns what was removed, for a message.

    :class:`ConfigError` for a shipped model's name or a name the user catalogue does not hold.
    """
    _refuse_shipped(name, "only models added with `vsr models add` can be removed")
    folder = folder or user_models_dir()
    card_path = folder / f"{check_name(name)}.json"
    if not card_path.is_file():
        raise ConfigError(f"there is no user model called {name!r} in {folder} (see `vsr models`)")
    # Only the files the name owns: never a path the card names (a card is a file anyone can
    # plant, and a readable one names NAME.suffix anyway, see ModelCard.read).
    files = [folder / f"{name}{s}" for s in SUFFIXES if (folder / f"{name}{s}").is_file()]
    card_path.unlink()
    for leftover in [*files, folder / f"{name}.md"]:
        leftover.unlink(missing_ok=True)
    return f"removed user model {name} ({', '.join(p.name for p in files) or 'no model file'}) from {folder}"


def _refuse_shipped(name: str, advice: str) -> None:
    if any(spec.name == name for spec in CATALOGUE):
        raise ConfigError(f"{name!r} is a model that ships with vsr; {advice}")


def _refuse_existing(name: str, folder: Path, force: bool) -> None:
    """Without ``force``, a user model called ``name`` is refused (``force`` replaces it)."""
    if (folder / f"{name}.json").exists() and not force:
        raise ConfigError(
            f"a user model called {name!r} exists already; --force replaces it, --name picks another name"
        )


def _set_aside(paths: list[Path], folder: Path, name: str, aside: list[tuple[Path, Path]]) -> None:
    """Rename each of ``paths`` that exists to a hidden backup in ``folder``, recording
    ``(path, backup)`` in ``aside`` as it goes (so a failure half way can be undone)."""
    for path in paths:
        if not path.exists():
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part.old", dir=folder)
        os.close(fd)
        os.replace(path, tmp)
        aside.append((path, Path(tmp)))


def _restore(aside: list[tuple[Path, Path]]) -> None:
    """Put back what :func:`_set_aside` renamed (best effort: a failure is already raising)."""
    for path, backup in reversed(aside):
        with contextlib.suppress(OSError):
            os.replace(backup, path)


_STALE_S = 3600.0


def _sweep_stale(folder: Path, name: str) -> None:
    """Delete ``.NAME.*.part*`` files (copies, backups, half-written cards) older than an hour:
    what an add killed half way (power cut, SIGKILL) left behind. Younger ones may belong to an
    add running now."""
    cutoff = time.time() - _STALE_S
    for stale in folder.glob(f".{glob.escape(name)}.*.part*"):
        with contextlib.suppress(OSError):
            if stale.is_file() and stale.stat().st_mtime < cutoff:
                stale.unlink()


def _copy_checked(source: Path, folder: Path, name: str, suffix: str, sha256: str) -> Path:
    """``source`` copied to a hidden temporary file in ``folder`` (keeping ``suffix``, which
    loaders go by); :class:`ModelError` when the copy's sha256 is not ``sha256``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".part{suffix}", dir=folder)
    copy = Path(tmp)
    try:
        os.chmod(copy, _FILE_MODE)
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        if file_sha256(copy) != sha256:
            raise ModelError(
                f"the copy of {source} in {folder} differs from the file (did it change meanwhile?)"
            )
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
    return copy


def _measure(info: ExternalInfo, copy: Path, name: str) -> Speed:
    """The speed of the copied model; a model that does not run is refused (:class:`ModelError`)."""
    try:
        return measure_speed(external_spec(replace(info, path=copy), name))
    except VsrError:
        raise
    except Exception as exc:  # the runtimes raise many types for a model they cannot run
        raise ModelError(f"model file {info.path} does not run: {type(exc).__name__}: {exc}") from exc


def _write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file and a rename: never half written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
