"""Is a weights file whole? Its size against its own safetensors header, then its sha256.

A truncated download or a disk-full copy leaves a file that exists but cannot load; ``vsr models``
and the model choosers (face mode, the ladders) must not count it as shipped weights. The size
check reads only the header (the 8-byte header length and the JSON that gives every tensor's
byte range), so a truncated file is refused without hashing it. The sha256 of a file is cached
by (path, size, mtime), so asking again (every ``has_weights``) costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import threading
from pathlib import Path
from typing import Literal

__all__ = ["WeightsState", "file_key", "file_sha256", "safetensors_size", "weights_state"]

WeightsState = Literal["ok", "missing", "corrupt"]

_MAX_HEADER = 100 << 20  # safetensors refuses headers above 100 MB too
_hashes: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_key(path: Path | str) -> tuple[str, int, int]:
    """(resolved path, size, mtime_ns): what a cache of facts about a file's content is keyed by
    (a rewritten file changes its size or mtime). Raises OSError."""
    st = os.stat(path)
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def file_sha256(path: Path) -> str:
    """The hex sha256 of ``path``; cached by :func:`file_key`. Raises OSError."""
    key = file_key(path)
    with _lock:
        cached = _hashes.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _lock:
        _hashes[key] = digest
    return digest


def safetensors_size(path: Path) -> int | None:
    """The size in bytes a safetensors file's header says it has (None: no valid header).

    Layout: a little-endian u64 header length N, N bytes of JSON mapping each tensor to its
    ``data_offsets`` [begin, end) in the data that follows, then the data.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER:
                return None
            raw = f.read(n)
    except OSError:
        return None
    if len(raw) != n:
        return None
    try:
        header = json.loads(raw)
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return 8 + n + max(ends, default=0)


def weights_state(path: Path | None, sha256: str | None) -> WeightsState:
    """``missing`` (no such file), ``corrupt`` (shorter or longer than its header says, or not
    the catalogue's ``sha256``) or ``ok``. ``sha256`` None: only the size is checked."""
    if path is None:
        return "missing"
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "missing"
    if path.suffix == ".safetensors" and safetensors_size(path) != st.st_size:
        return "corrupt"
    if sha256 is None:
        return "ok"
    try:
        return "ok" if file_sha256(path) == sha256 else "corrupt"
    except OSError:
        return "missing"
