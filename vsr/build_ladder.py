"""The one function that builds a :class:`~vsr.ladder.Ladder`, from catalogue data.

``build_ladder(ModelConfig("fast-tiny-stream"))`` resolves the model once, follows each catalogue entry's
``fallback`` (``fast-tiny-stream -> bicubic``) and builds one backend per rung. A cheaper rung that
cannot be built (no weights in this build, a backend that cannot serve it) is skipped and logged;
the model asked for must build. ``face=FaceConfig(...)`` builds face mode instead: a face-region
upscaler per face model down the face model's chain, sharing one detector, tracker and statistics,
then plain bicubic as the floor. ``fallbacks=False`` builds the top rung only (lossless runs).
"""

from __future__ import annotations

import contextlib
import logging

from .backends import create_backend
from .backends.base import Backend
from .config import FaceConfig, ModelConfig
from .errors import ModelError
from .ladder import Ladder, Rung
from .models.catalogue import fallback_chain, get_spec

__all__ = ["build_ladder"]

log = logging.getLogger(__name__)


def _create(how: ModelConfig, model: str, *, top: bool) -> Backend:
    """The backend of catalogue ``model`` run as ``how`` says; tiling and compiling apply to the
    top rung only, and bicubic needs no network backend."""
    spec = get_spec(model)
    return create_backend(
        "auto" if spec.arch == "bicubic" else how.backend,
        spec,
        device=how.device,
        tile=how.tile if top else 0,
        threads=how.threads,
        compile=how.compile and top,
    )


def build_ladder(
    how: ModelConfig,
    *,
    face: FaceConfig | None = None,
    fallbacks: bool = True,
    live: bool = False,
) -> Ladder:
    """The ladder for ``how.model`` run on ``how.backend`` (or, with ``face``, for face mode:
    ``how.model`` is then not used).

    ``live``: face mode's default face model must keep a frame rate (stream, webcam, webrtc).
    Raises :class:`~vsr.errors.ConfigError` for unknown names and
    :class:`~vsr.errors.ModelError` / :class:`~vsr.errors.BackendError` when the model asked for
    cannot run. The ladder owns every backend it holds.
    """
    if face is not None:
        return _face_ladder(face, how, fallbacks=fallbacks, live=live)
    names = fallback_chain(how.model) if fallbacks else (how.model,)
    rungs: list[Rung] = []
    with _closing_on_error(rungs):
        for i, name in enumerate(names):
            backend = _try_rung(name, i, lambda n=name, top=(i == 0): _create(how, n, top=top))
            if backend is not None:
                rungs.append((name, backend))
    return Ladder(rungs)


def _try_rung(name: str, index: int, build) -> Backend | None:  # build: () -> Backend
    """The rung's backend; None (logged) when a cheaper rung has no weights or cannot be built."""
    if index > 0 and not get_spec(name).has_weights:
        log.info("fallback tier %s has no weights; skipping it", name)
        return None
    try:
        return build()
    except ModelError:
        if index == 0:  # the model asked for must build
            raise
        log.info("fallback tier %s cannot be built; skipping it", name)
        return None


def _face_ladder(cfg: FaceConfig, how: ModelConfig, *, fallbacks: bool, live: bool) -> Ladder:
    from .face.detect import create_detector
    from .face.region import FaceRegionUpscaler, best_face_model
    from .face.stats import FaceStats
    from .face.track import FaceTracker

    first = cfg.face_model or best_face_model(live=live)
    names = list(fallback_chain(first)) if fallbacks else [first]
    names = [names[0], *(n for n in names[1:] if n != "bicubic")]
    detector, tracker, stats = create_detector(cfg.detector), FaceTracker(), FaceStats()
    faces: list[FaceRegionUpscaler] = []

    def face_rung(name: str) -> FaceRegionUpscaler:
        with contextlib.ExitStack() as undo:
            face = _create(how, name, top=False)
            undo.callback(face.close)
            bg = _create(how, cfg.background_model, top=False)
            undo.callback(bg.close)
            up = FaceRegionUpscaler(
                face, bg, detector=detector, tracker=tracker, detect_every=cfg.detect_every, margin=cfg.margin
            )
            undo.pop_all()
        up.stats = stats
        return up

    rungs: list[Rung] = []
    with _closing_on_error(rungs):
        for i, name in enumerate(names):
            up = _try_rung(name, i, lambda n=name: face_rung(n))
            if up is not None:
                faces.append(up)  # type: ignore[arg-type]
                rungs.append((up.info.name, up))
        if fallbacks:
            rungs.append(("bicubic", _create(how, "bicubic", top=False)))
    log.info("face mode tiers: %s; %s detector", ", ".join(n for n, _ in rungs), cfg.detector)
    return Ladder(rungs, faces=faces, face_stats=stats)


@contextlib.contextmanager
def _closing_on_error(rungs: list[Rung]):  # -> Iterator[None]
    """Close the rungs built so far if building the rest fails."""
    try:
        yield
    except BaseException:
        for _, backend in rungs:
            backend.close()
        raise
