"""The ledger of derived files: what vsr wrote when it exported ONNX files and built TensorRT engines.

A cached derived file cannot vouch for itself: a sidecar beside it can be rewritten with it, and a
file name only says what it should be. So when vsr writes a derived file it records the file's
sha256 and size here, keyed by the sha256 of the SOURCE it was made from (the weights for an ONNX
export, the ONNX file for an engine), and checks that record before it uses the file again.

Where: ``$VSR_STATE_DIR``, else ``$XDG_STATE_HOME/vsr``, else ``~/.local/state/vsr``, in a
``derived/`` folder: state, not cache (XDG: what should survive a cache wipe and is not meant to be
shared or edited), and a separate tree from ``$VSR_CACHE``, so replacing files in the cache does
not rewrite their records. One small JSON per source hash, ``derived/<source sha256>.json``::

    {"format": 1, "source_sha256": "...", "files": {"/abs/path.onnx":
        {"sha256": "...", "size": 60326, "written_at": "2026-11-30T21:30:00Z", "kind": "onnx"}}}

Files are keyed by their resolved absolute path, so two caches (a test's, the user's) never
overwrite each other's record. Writes go through a temporary file and a rename under an exclusive
lock (read, merge, write), so concurrent exports keep every record; entries whose file is gone are
dropped then. A ledger that cannot be read counts as empty: its files are ``unknown`` (rebuilt),
and the next record rewrites it. Hashes are cached per (path, size, mtime_ns) in the process, so a
second open of the same file costs a ``stat`` and a small JSON read, not a re-hash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from .models.integrity import file_sha256

__all__ = ["Verdict", "digest", "forget", "ledger_path", "record", "recorded", "state_dir", "verify"]

log = logging.getLogger(__name__)

Verdict = Literal["ok", "unknown", "mismatch"]
FORMAT = 1

_write_lock = threading.Lock()  # flock is per open file, so threads of one process also take this


def state_dir() -> Path:
    """``$VSR_STATE_DIR``, else ``$XDG_STATE_HOME/vsr``, else ``~/.local/state/vsr``."""
    env = os.environ.get("VSR_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "vsr"


def ledger_path(source_sha256: str) -> Path:
    """The JSON holding the records of every file derived from the source with this sha256."""
    if len(source_sha256) != 64 or not all(c in "0123456789abcdef" for c in source_sha256):
        raise ValueError(f"not a sha256 hex digest: {source_sha256!r}")
    return state_dir() / "derived" / f"{source_sha256}.json"


def digest(path: Path) -> str:
    """The sha256 of ``path``; hashed once per (path, size, mtime_ns) in this process."""
    return file_sha256(Path(path))


def _read(ledger: Path) -> dict[str, Any]:
    """The ``files`` mapping of a ledger; empty when it is missing or unreadable (logged)."""
    try:
        data = json.loads(ledger.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.info("ignoring unreadable ledger %s (%s); its files count as unknown", ledger, exc)
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format") != FORMAT:
        log.info("ignoring ledger %s: not a format-%d ledger; its files count as unknown", ledger, FORMAT)
        return {}
    return {k: v for k, v in files.items() if isinstance(v, dict)}


@contextlib.contextmanager
def _locked(ledger: Path) -> Iterator[None]:
    """Exclusive access to the ledger folder for one read-merge-write (flock where there is one)."""
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with _write_lock, open(ledger.parent / ".lock", "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock (Windows): a lost record only costs a rebuild
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(ledger: Path, source_sha256: str, files: dict[str, Any]) -> None:
    kept = {name: entry for name, entry in sorted(files.items()) if Path(name).exists()}
    body = {"format": FORMAT, "source_sha256": source_sha256, "files": kept}
    tmp = ledger.with_name(f".{ledger.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, ledger)
    finally:
        tmp.unlink(missing_ok=True)


def _update(source_sha256: str, name: str, entry: dict[str, Any] | None) -> None:
    """Set (or with None, drop) one file's record; a ledger that cannot be written is logged."""
    ledger = ledger_path(source_sha256)
    try:
        with _locked(ledger):
            files = _read(ledger)
            if entry is None and name not in files:
                return
            files.pop(name, None)
            if entry is not None:
                files[name] = entry
            _write(ledger, source_sha256, files)
    except OSError as exc:
        log.warning("cannot update vsr's ledger %s (%s); set VSR_STATE_DIR to a writable folder", ledger, exc)


def record(source_sha256: str, path: Path, kind: str) -> dict[str, Any]:
    """Record the file now at ``path`` as derived from ``source_sha256``; returns the record.

    Call it right after writing ``path``. It hashes what is on disk (not what the caller meant to
    write), so when two processes export the same file at once the record matches the survivor.
    """
    path = Path(path)
    entry = {
        "sha256": digest(path),
        "size": path.stat().st_size,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kind": kind,
    }
    _update(source_sha256, str(path.resolve()), entry)
    return entry


def recorded(source_sha256: str, path: Path) -> dict[str, Any] | None:
    """The record of ``path`` under ``source_sha256``, or None when there is none."""
    return _read(ledger_path(source_sha256)).get(str(Path(path).resolve()))


def verify(source_sha256: str, path: Path) -> Verdict:
    """``ok``: ``path`` is what vsr wrote; ``mismatch``: it differs; ``unknown``: no record of it."""
    entry = recorded(source_sha256, path)
    if entry is None:
        return "unknown"
    if Path(path).stat().st_size != entry.get("size"):
        return "mismatch"  # no need to hash
    return "ok" if digest(Path(path)) == entry.get("sha256") else "mismatch"


def forget(source_sha256: str, path: Path) -> None:
    """Drop the record of ``path`` (its file was removed or is about to be rebuilt)."""
    _update(source_sha256, str(Path(path).resolve()), None)
