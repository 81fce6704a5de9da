"""The job manifest: what a file job is (input, settings, segments) and which segments are done.

It lives in a hidden work folder beside the output (``.NAME.vsr-job/job.json``) and is rewritten
atomically (temporary file, fsync, rename) after each finished segment, so a crash, SIGKILL or
power loss leaves either the old or the new manifest, never a torn one. A segment counts as done
only when its file exists with the recorded size.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .plan import Span

__all__ = ["Manifest", "SegmentRecord", "input_identity", "work_dir_for"]

log = logging.getLogger(__name__)

VERSION = 1


def work_dir_for(output: str) -> Path:
    """The hidden work folder of the job writing ``output``."""
    out = Path(output)
    return out.parent / f".{out.name}.vsr-job"


def input_identity(path: str) -> dict[str, Any]:
    """What says the input is the same file: resolved path, size and modification time (ns)."""
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class SegmentRecord:
    """One segment: its span (stream time base), and once done its file, frame count and bytes."""

    index: int
    start: int | None
    end: int | None
    done: bool = False
    file: str | None = None
    frames: int = 0
    bytes: int = 0

    @property
    def span(self) -> Span:
        return Span(self.index, self.start, self.end)


@dataclass
class Manifest:
    """A job: ``input`` identity, the ``settings`` that shape the output, and its segments."""

    work_dir: Path
    input: dict[str, Any]
    settings: dict[str, Any]
    segments: list[SegmentRecord] = field(default_factory=list)

    @classmethod
    def new(
        cls, work_dir: Path, input: dict[str, Any], settings: dict[str, Any], spans: list[Span]
    ) -> Manifest:
        work_dir.mkdir(parents=True, exist_ok=True)
        m = cls(work_dir, input, settings, [SegmentRecord(s.index, s.start, s.end) for s in spans])
        m.save()
        return m

    @classmethod
    def load(cls, work_dir: Path) -> Manifest | None:
        """The manifest in ``work_dir``; None if there is none or it cannot be read (logged)."""
        path = work_dir / "job.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            segments = [SegmentRecord(**s) for s in data["segments"]]
            return cls(work_dir, data["input"], data["settings"], segments)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the job manifest %s cannot be read (%s); starting over", path, exc)
            return None

    def save(self) -> None:
        """Write atomically: a crash leaves the previous manifest or this one."""
        data = {
            "version": VERSION,
            "input": self.input,
            "settings": self.settings,
            "segments": [asdict(s) for s in self.segments],
        }
        tmp = self.work_dir / "job.json.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.work_dir / "job.json")
        _fsync_dir(self.work_dir)

    def mismatch(self, input: dict[str, Any], settings: dict[str, Any]) -> str | None:
        """Why this job cannot be resumed for ``input`` / ``settings`` (None: it can)."""
        if self.input != input:
            return f"the input changed since the interrupted job ({_changed(self.input, input)})"
        if self.settings != settings:
            return f"the settings differ from the interrupted job's ({_changed(self.settings, settings)})"
        return None

    def verified_done(self) -> list[SegmentRecord]:
        """Done segments whose file is intact; a missing or resized file makes its segment todo."""
        for seg in self.segments:
            if seg.done and seg.file is not None:
                path = self.work_dir / seg.file
                if not path.is_file() or path.stat().st_size != seg.bytes:
                    log.warning("segment %d's file is missing or changed; redoing it", seg.index)
                    seg.done, seg.file, seg.frames, seg.bytes = False, None, 0, 0
        return [s for s in self.segments if s.done]

    def mark_done(self, index: int, file: str | None, frames: int) -> None:
        seg = self.segments[index]
        seg.done, seg.file, seg.frames = True, file, frames
        seg.bytes = (self.work_dir / file).stat().st_size if file else 0
        self.save()

    @property
    def complete(self) -> bool:
        return all(s.done for s in self.segments)

    def remove(self) -> None:
        """Delete the work folder (the job is finished)."""
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:3])


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
