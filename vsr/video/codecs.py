"""Video encoders vsr knows how to drive: their quality (CRF) and speed (preset) options.

Each encoder spells "constant quality" and "speed preset" its own way; :func:`encoder_options` maps
``--crf`` / ``--preset`` onto them. Any other encoder FFmpeg has can still be named; it then runs
with its own defaults and refuses ``--crf`` / ``--preset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import av

from ..errors import ConfigError

__all__ = ["ENCODERS", "EncoderProfile", "check_encoder", "default_codec", "encoder_options"]


@dataclass(frozen=True)
class EncoderProfile:
    """How to ask one encoder for a quality level and a speed.

    ``crf_option`` / ``preset_option``: the encoder's option names; ``crf_max``: the top of its
    quality scale; ``presets``: accepted preset values (empty = any); ``extra``: options always set.
    """

    name: str
    crf_option: str
    crf_max: int
    default_crf: int
    preset_option: str
    default_preset: str
    presets: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


_X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
_NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")
_NVENC_EXTRA = {"rc": "vbr", "b": "0"}

ENCODERS: dict[str, EncoderProfile] = {
    p.name: p
    for p in (
        EncoderProfile("libx264", "crf", 51, 18, "preset", "veryfast", _X26X_PRESETS),
        EncoderProfile(
            "libx265", "crf", 51, 20, "preset", "veryfast", _X26X_PRESETS, {"x265-params": "log-level=error"}
        ),
        EncoderProfile("libsvtav1", "crf", 63, 30, "preset", "10", tuple(str(i) for i in range(14))),
        EncoderProfile(
            "libvpx-vp9",
            "crf",
            63,
            31,
            "deadline",
            "realtime",
            ("realtime", "good", "best"),
            {"b": "0", "cpu-used": "8", "row-mt": "1"},
        ),
        EncoderProfile("h264_nvenc", "cq", 51, 20, "preset", "p4", _NVENC_PRESETS, _NVENC_EXTRA),
        EncoderProfile("hevc_nvenc", "cq", 51, 22, "preset", "p4", _NVENC_PRESETS, _NVENC_EXTRA),
        EncoderProfile("av1_nvenc", "cq", 63, 30, "preset", "p4", _NVENC_PRESETS, _NVENC_EXTRA),
    )
}
"""The encoders whose ``--crf`` / ``--preset`` vsr maps (the NVENC ones open only with an NVIDIA GPU)."""


def default_codec(container: str) -> str:
    """The encoder used when none is named: libvpx-vp9 for webm (it takes no H.264), else libx264."""
    return "libvpx-vp9" if container == "webm" else "libx264"


def check_encoder(name: str) -> None:
    """Raise :class:`ConfigError` unless FFmpeg has a video encoder called ``name``."""
    try:
        codec = av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        known = ", ".join(ENCODERS)
        raise ConfigError(f"unknown codec {name!r}; try one of: {known}") from exc
    if codec.type != "video":
        raise ConfigError(f"codec {name!r} is a {codec.type} encoder, not a video encoder")


def encoder_options(name: str, crf: int | None, preset: str | None) -> dict[str, str]:
    """The FFmpeg options (string -> string) that ask encoder ``name`` for ``crf`` and ``preset``.

    ``None`` means the profile's default. Raises :class:`ConfigError` for a value the encoder does
    not accept, or for ``crf`` / ``preset`` given to an encoder vsr has no profile for.
    """
    profile = ENCODERS.get(name)
    if profile is None:
        if crf is not None or preset is not None:
            raise ConfigError(f"--crf / --preset are not supported for codec {name!r}; drop them")
        return {}
    crf = profile.default_crf if crf is None else crf
    if not 0 <= crf <= profile.crf_max:
        raise ConfigError(f"crf for {name} must be in 0..{profile.crf_max}, got {crf}")
    preset = profile.default_preset if preset is None else preset
    if profile.presets and preset not in profile.presets:
        raise ConfigError(
            f"unknown preset {preset!r} for {name}; choose one of: {', '.join(profile.presets)}"
        )
    return {**profile.extra, profile.crf_option: str(crf), profile.preset_option: preset}
