"""Batch upscaling: many inputs (files, or the videos in a folder) into one output folder.

Every file gets the same settings. Outputs are named after their inputs: the same stem, the
extension of ``--format`` when one is given, else the input's own extension when vsr knows that
container and it can hold the codec, else ``.mkv`` (matroska holds anything). A folder input
takes the files directly in it (not in sub-folders) whose extension is in
:data:`VIDEO_EXTENSIONS`, hidden files excepted, sorted by name.

An output that exists and is complete (as many video frames as its input) is skipped unless
``overwrite``; one that exists but is short is not replaced without ``overwrite`` (that file
fails). An interrupted file resumes on the next run (see :mod:`vsr.jobs.job`). A file that fails
is recorded with its reason and the batch goes on. ``stop`` (Ctrl-C) lets the current file stop
cleanly, then ends the batch: the files after it are "not started".

This module is not re-exported by :mod:`vsr.jobs` (the pipeline imports that package, and this
module imports the pipeline): ``from vsr.jobs.batch import upscale_batch``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import av

from ..build_ladder import build_ladder
from ..config import (
    CONTAINER_EXTENSIONS,
    STDIO,
    ClusterConfig,
    DecodeConfig,
    EncodeConfig,
    FaceConfig,
    ModelConfig,
    PipelineConfig,
)
from ..errors import ConfigError, InputError, OutputError, VsrError
from ..ladder import Ladder
from ..pipeline import upscale_file
from ..video.codecs import check_encoder, default_codec
from ..video.depth import DEFAULT_PIX_FMT
from ..video.remux import container_refuses

if TYPE_CHECKING:  # pragma: no cover
    from ..cluster.pool import WorkerPool

__all__ = [
    "VIDEO_EXTENSIONS",
    "BatchResult",
    "FileResult",
    "collect_inputs",
    "format_table",
    "output_name",
    "template_path",
    "upscale_batch",
]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: frozenset[str] = frozenset(CONTAINER_EXTENSIONS) | {
    ".mpg",
    ".mpeg",
    ".m2ts",
    ".mts",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
}
"""The extensions (lower case) a folder input takes as videos."""

Status = Literal["running", "done", "skipped", "failed", "interrupted", "not started"]

_SUFFIX_OF: dict[str, str] = {}
for _ext, _fmt in CONTAINER_EXTENSIONS.items():
    _SUFFIX_OF.setdefault(_fmt, _ext)  # first extension per muxer: mp4 -> .mp4, matroska -> .mkv


@dataclass(frozen=True)
class FileResult:
    """One file of a batch: where it went and what happened (``status``; ``reason`` when it did
    not finish; ``exit_code`` the CLI would have returned for it alone)."""

    input: Path
    output: Path
    status: Status
    frames: int = 0
    fps: float = 0.0
    reason: str = ""
    exit_code: int = 0

    @property
    def result(self) -> str:
        """The table's result column: ``done``, ``skipped``, ``failed: reason``..."""
        return f"{self.status}: {self.reason}" if self.status == "failed" else self.status


@dataclass(frozen=True)
class BatchResult:
    """Every file of a batch, in order."""

    files: tuple[FileResult, ...]

    def count(self, status: Status) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def interrupted(self) -> bool:
        return any(f.status in ("interrupted", "not started") for f in self.files)

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the first file that failed."""
        return next((f.exit_code or 1 for f in self.files if f.status == "failed"), 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: one entry per file (paths as strings)."""
        return {
            "files": [
                {**dataclasses.asdict(f), "input": str(f.input), "output": str(f.output)} for f in self.files
            ]
        }


OnFile = Callable[[int, int, FileResult], None]
"""Called with (1-based position, number of files, result): once with status ``running`` before a
file starts, and once with its final result (a skipped file gets only that one)."""


def video_files(folder: Path) -> list[Path]:
    """The videos directly in ``folder`` (by extension, hidden files excepted), sorted by name."""
    found = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS
    ]
    return sorted(found)


def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The files of a batch: each input file as given, each folder replaced by its videos.

    Raises :class:`InputError` for a folder without videos, :class:`ConfigError` for stdin (``-``).
    """
    if not inputs:
        raise ConfigError("a batch needs at least one input")
    files: list[Path] = []
    for item in inputs:
        if str(item) == STDIO:
            raise ConfigError("stdin (-) cannot be part of a batch; name files or a folder")
        path = Path(item)
        if not path.is_dir():
            files.append(path)
            continue
        found = video_files(path)
        if not found:
            known = " ".join(sorted(VIDEO_EXTENSIONS))
            raise InputError(f"no video files in folder {path} (looked for {known})")
        files.extend(found)
    return files


@lru_cache(maxsize=32)
def _holds(container: str, codec: str | None, pix_fmt: str) -> bool:
    """Whether a ``container`` file can hold ``codec`` video (None: the container's default)."""
    name = codec or default_codec(container)

    def add(c: av.container.OutputContainer) -> None:
        stream = c.add_stream(name, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, pix_fmt

    return container_refuses(container, add) is None


def template_path(fmt: str | None) -> str:
    """A stand-in output path for building a batch's :class:`EncodeConfig` (the path is not used)."""
    return "batch" + (_SUFFIX_OF.get(fmt, f".{fmt}") if fmt else ".mkv")


def output_name(src: Path, enc: EncodeConfig) -> str:
    """The output file name for input ``src`` under the settings of ``enc`` (see the module doc)."""
    if enc.format:
        return src.stem + _SUFFIX_OF.get(enc.format, f".{enc.format}")
    container = CONTAINER_EXTENSIONS.get(src.suffix.lower())
    if container and _holds(container, enc.codec, enc.pix_fmt or DEFAULT_PIX_FMT):
        return src.name
    return src.stem + ".mkv"


def _video_frames(path: Path) -> int:
    """Frames of the first video stream: the header's count, else its packets (nothing decoded)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return stream.frames or sum(1 for p in c.demux(stream) if p.size)


def complete_frames(src: Path, out: Path) -> int | None:
    """The frames of ``out`` when it is a finished upscale of ``src`` (as many frames), else None."""
    if not out.is_file():
        return None
    try:
        frames, expected = _video_frames(out), _video_frames(src)
    except (av.error.FFmpegError, OSError, IndexError, ValueError):
        return None
    return frames if frames >= expected > 0 else None


def _plan(files: Sequence[Path], out_dir: Path, enc: EncodeConfig) -> list[FileResult]:
    """A ``running`` result per file with its output path, or ``failed`` when the name clashes."""
    planned: list[FileResult] = []
    taken: dict[Path, Path] = {}
    for src in files:
        out = out_dir / output_name(src, enc)
        reason = ""
        if out in taken:
            reason = f"same output name as {taken[out]}"
        elif src.exists() and out.exists() and out.resolve() == src.resolve():
            reason = "the output would replace the input; choose another output folder"
        taken.setdefault(out, src)
        status: Status = "failed" if reason else "running"
        planned.append(FileResult(src, out, status, reason=reason, exit_code=4 if reason else 0))
    return planned


def _failed(item: FileResult, exc: BaseException) -> FileResult:
    if isinstance(exc, VsrError):
        reason, code = str(exc), exc.exit_code
    elif isinstance(exc, av.error.FFmpegError):
        reason, code = f"FFmpeg: {exc}", 1
    elif isinstance(exc, OSError):
        reason, code = f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1
    else:
        log.debug("unexpected error on %s", item.input, exc_info=exc)
        reason, code = f"unexpected {type(exc).__name__}: {exc}", 1
    return dataclasses.replace(item, status="failed", reason=reason, exit_code=code)


@dataclass
class _Run:
    """What every file of one batch shares: settings, the ladder (built on first use), callbacks."""

    enc: EncodeConfig
    model: ModelConfig
    cfg: PipelineConfig | None
    face: FaceConfig | None
    stop: threading.Event | None
    resume: bool
    on_status: Callable[[str], None] | None
    stack: contextlib.ExitStack
    deinterlace: bool = True
    cluster: ClusterConfig | None = None
    ladder: Ladder | None = None
    pool: WorkerPool | None = None

    def shared(self) -> tuple[Ladder | None, WorkerPool | None]:
        """One ladder, or with ``cluster`` one pool of Ray workers, for every file, built on first
        use (face mode builds a ladder per file: its tracks are per video)."""
        if self.cluster is not None and self.pool is None:
            from ..cluster.pool import WorkerPool

            self.pool = self.stack.enter_context(WorkerPool.open(self.cluster, self.model))
        elif self.cluster is None and self.ladder is None and self.face is None:
            self.ladder = self.stack.enter_context(build_ladder(self.model, fallbacks=False))
        return self.ladder, self.pool

    def upscale(self, item: FileResult) -> FileResult:
        """Run one file; any error becomes its ``failed`` result."""
        enc = dataclasses.replace(self.enc, path=str(item.output))
        ladder, pool = self.shared()  # a model (or Ray runtime) that cannot start stops the batch
        try:
            stats = upscale_file(
                DecodeConfig(str(item.input), deinterlace=self.deinterlace),
                enc,
                self.model,
                self.cfg,
                stop=self.stop,
                face=self.face,
                ladder=ladder,
                on_status=self.on_status,
                resume=self.resume,
                pool=pool,
            )
        except Exception as exc:  # one file's failure is its result; the batch goes on
            return _failed(item, exc)
        status: Status = "interrupted" if stats.interrupted else "done"
        return dataclasses.replace(item, status=status, frames=stats.frames_out, fps=stats.fps)


def _check_out(out_dir: str | Path) -> None:
    if str(out_dir) == STDIO:
        raise ConfigError("a batch writes files: -o must name a folder, not - (stdout)")


def _out_folder(out_dir: str | Path) -> Path:
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is not a folder; a batch needs -o FOLDER")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {path}: {exc.strerror or exc}") from exc
    return path


def upscale_batch(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    enc_template: EncodeConfig,
    model: ModelConfig,
    cfg: PipelineConfig | None = None,
    *,
    face: FaceConfig | None = None,
    stop: threading.Event | None = None,
    on_file: OnFile | None = None,
    on_status: Callable[[str], None] | None = None,
    resume: bool = True,
    deinterlace: bool = True,
    cluster: ClusterConfig | None = None,
) -> BatchResult:
    """Upscale every video of ``inputs`` (files and folders) into ``out_dir`` (created if missing).

    ``enc_template``: the encode settings of every file; its ``path`` is not used, its
    ``overwrite`` redoes outputs that are complete. ``on_status``: each file's progress line.
    ``resume`` and ``deinterlace`` apply to every file as in :func:`~vsr.pipeline.upscale_file`.
    ``cluster``: every file's segments run on one pool of Ray workers (:mod:`vsr.cluster`), file
    after file (the driver stitches each file when its segments are done).
    Raises :class:`~vsr.errors.VsrError` only for what stops the whole batch (no videos in a folder,
    an unusable output folder or codec, a model that cannot be built); each file's own failure is
    in its :class:`FileResult`.
    """
    _check_out(out_dir)
    files = collect_inputs(inputs)
    folder = _out_folder(out_dir)
    if enc_template.codec:
        check_encoder(enc_template.codec)
    plan = _plan(files, folder, enc_template)
    done: list[FileResult] = []
    with contextlib.ExitStack() as stack:
        run = _Run(enc_template, model, cfg, face, stop, resume, on_status, stack, deinterlace, cluster)
        for n, item in enumerate(plan, 1):
            done.append(_one(run, item, n, len(plan), on_file))
    return BatchResult(tuple(done))


def _one(run: _Run, item: FileResult, n: int, total: int, on_file: OnFile | None) -> FileResult:
    notify = on_file or (lambda *_: None)
    if item.status == "running" and run.stop is not None and run.stop.is_set():
        item = dataclasses.replace(item, status="not started")
    elif item.status == "running" and not run.enc.overwrite:
        frames = complete_frames(item.input, item.output)
        if frames is not None:
            item = dataclasses.replace(item, status="skipped", frames=frames)
    if item.status == "running":
        notify(n, total, item)
        _log_file(n, total, item)
        item = run.upscale(item)
    notify(n, total, item)
    _log_file(n, total, item)
    return item


def _log_file(n: int, total: int, item: FileResult) -> None:
    """The one line per file event: starting, done, skipped, failed, interrupted."""
    head = f"[{n}/{total}] {item.input.name}"
    if item.status == "running":
        log.info("%s -> %s", head, item.output)
    elif item.status == "done":
        log.info("%s: done, %d frames (%.1f fps)", head, item.frames, item.fps)
    elif item.status == "skipped":
        log.info("%s: skipped, %s is complete (--overwrite redoes it)", head, item.output)
    elif item.status == "failed":
        log.warning("%s: failed: %s", head, item.reason)
    elif item.status == "interrupted":
        log.warning("%s: interrupted after %d frames; run the batch again to finish it", head, item.frames)


def format_table(result: BatchResult) -> str:
    """The end-of-batch table: file, frames, fps, result; then a line of totals."""
    names = [f.input.name for f in result.files]
    width = max([4, *map(len, names)])
    lines = [f"{'file':<{width}}  {'frames':>6}  {'fps':>6}  result"]
    for name, f in zip(names, result.files, strict=True):
        fps = f"{f.fps:6.1f}" if f.status in ("done", "interrupted") else f"{'-':>6}"
        frames = f"{f.frames:>6}" if f.frames or f.status == "done" else f"{'-':>6}"
        lines.append(f"{name:<{width}}  {frames}  {fps}  {f.result}")
    counts = ", ".join(
        f"{result.count(s)} {s}"
        for s in ("done", "skipped", "failed", "interrupted", "not started")
        if result.count(s)
    )
    lines.append(f"{len(result.files)} files: {counts}")
    return "\n".join(lines)
