"""The model catalogue: one explicit list of every model vsr knows, with the facts about each.

Importing this module needs neither torch nor the weights; :func:`build_model` imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError, ModelError
from .integrity import WeightsState, file_sha256, weights_state

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

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

Arch = Literal["bicubic", "fast", "fast-lite", "fast-tiny", "fast-plus", "compact", "srresnet"]
Colour = Literal["rgb", "y"]


@dataclass(frozen=True)
class ModelSpec:
    """Facts about one catalogue model.

    ``colour`` says what the network sees: ``rgb`` (3 channels in, 3 out, [0, 1]) or ``y``
    (BT.601 luma/255 in, luma residual over bicubic out; chroma is upscaled with bicubic).
    ``size_multiple``: input height and width must be multiples of it (the backends pad).
    ``params``: parameters of the inference network (BN folded); ``macs_per_pixel``:
    multiply-accumulates per *input* pixel (both checked by a test).
    ``receptive_radius``: input pixels of context each output pixel depends on (tiling overlap).
    ``cpu_backend``: the backend measured fastest on CPU for this architecture (``auto`` uses it).
    ``weights``: file name under ``vsr/weights`` (``None`` for bicubic); ``sha256`` its checksum,
    ``None`` while no trained weights ship.
    ``fallback``: the next cheaper model a live run degrades to when this one cannot keep its
    latency budget (``None``: the floor). Every chain ends in ``bicubic`` (checked at import).
    """

    name: str
    arch: Arch
    description: str
    scale: int = 4
    colour: Colour = "rgb"
    size_multiple: int = 1
    fp16_safe: bool = True
    params: int = 0
    macs_per_pixel: int = 0
    weights: str | None = None
    sha256: str | None = None
    tier: Literal["baseline", "cpu", "gpu", "quality"] = "cpu"
    receptive_radius: int = 0
    cpu_backend: Literal["torch", "onnx"] = "torch"
    fallback: str | None = None

    @property
    def weights_path(self) -> Path | None:
        return WEIGHTS_DIR / self.weights if self.weights else None

    @property
    def weights_state(self) -> WeightsState:
        """``ok`` (no weights needed, or the file is whole: its safetensors size and the catalogue
        sha256 match; the hash is cached by path, size and mtime), ``missing`` or ``corrupt``."""
        return "ok" if self.arch == "bicubic" else weights_state(self.weights_path, self.sha256)

    @property
    def has_weights(self) -> bool:
        """True when the model needs no weights or its trained weights file is present and whole."""
        return self.weights_state == "ok"


CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="bicubic",
        arch="bicubic",
        description="bicubic interpolation, no network: the baseline",
        tier="baseline",
    ),
    ModelSpec(
        name="fast",
        arch="fast",
        description="ESPCN-class luma net (5 convs, PixelShuffle): the CPU real-time tier",
        colour="y",
        params=38_368,
        macs_per_pixel=38_064,
        weights="fast.safetensors",
        sha256="7baf7084c5adc942141622071f656deb1c1d74f979581c864e75cdb38e669c1e",
        tier="cpu",
        receptive_radius=6,
        cpu_backend="torch",
        fallback="fast-lite",
    ),
    ModelSpec(
        name="fast-stream",
        arch="fast",
        description="fast, fine-tuned on H.264/JPEG-damaged input: for low-bitrate streams",
        colour="y",
        params=38_368,
        macs_per_pixel=38_064,
        weights="fast-stream.safetensors",
        sha256="068a45d7a5a8314cebe5ded9f9dee05639a745e9d064f3bd9ed04b1c2bf1db26",
        tier="cpu",
        receptive_radius=6,
        cpu_backend="torch",
        fallback="fast-lite-stream",
    ),
    ModelSpec(
        name="fast-lite",
        arch="fast-lite",
        description="fast with one 32-feature layer fewer (-24% MACs): the 35 frames/s CPU tier",
        colour="y",
        params=29_088,
        macs_per_pixel=28_848,
        weights="fast-lite.safetensors",
        sha256="87c1c869a19a328f8884732377305ef63da046ba3515cd7bad1bb40a057440fd",
        tier="cpu",
        receptive_radius=5,
        cpu_backend="torch",
        fallback="fast-tiny",
    ),
    ModelSpec(
        name="fast-lite-stream",
        arch="fast-lite",
        description="fast-lite, fine-tuned on H.264/JPEG-damaged input: live streams on a CPU",
        colour="y",
        params=29_088,
        macs_per_pixel=28_848,
        weights="fast-lite-stream.safetensors",
        sha256="623504821c15457e8f95ba7a5885d90f223b3326cd9066e1e4a947e73bae1edc",
        tier="cpu",
        receptive_radius=5,
        cpu_backend="torch",
        fallback="fast-tiny-stream",
    ),
    ModelSpec(
        name="fast-tiny",
        arch="fast-tiny",
        description="3-conv luma net (14.6K MACs, -62% of fast): CPU live tier for 30 fps streams",
        colour="y",
        params=14_768,
        macs_per_pixel=14_624,
        weights="fast-tiny.safetensors",
        sha256="ece7309cb60518db0ad0f7fc92ff8fb6cc2a302d53448f74b3cb3672b21282be",
        tier="cpu",
        receptive_radius=4,
        cpu_backend="torch",
        fallback="bicubic",
    ),
    ModelSpec(
        name="fast-tiny-stream",
        arch="fast-tiny",
        description="fast-tiny, fine-tuned on H.264/JPEG-damaged input: 30 fps live streams on a CPU",
        colour="y",
        params=14_768,
        macs_per_pixel=14_624,
        weights="fast-tiny-stream.safetensors",
        sha256="576fcd64365db8b2c66c1611f52358746f8bc87a077ba5a6ffde5b384d36fab0",
        tier="cpu",
        receptive_radius=4,
        cpu_backend="torch",
        fallback="bicubic",
    ),
    ModelSpec(
        name="fast-plus",
        arch="fast-plus",
        description="fast with three more 32-feature layers (66K MACs): the CPU face tier",
        colour="y",
        params=66_208,
        macs_per_pixel=65_712,
        weights="fast-plus.safetensors",
        sha256="9b942154c5399817471aa7b5a13cc9c6c5023f9a07eb912e5d8d1b456bcebfe9",
        tier="cpu",
        receptive_radius=9,
        cpu_backend="torch",
        fallback="fast",
    ),
    ModelSpec(
        name="compact",
        arch="compact",
        description="SRVGG-style stack of 16 3x3 convs (64 features): the GPU real-time tier",
        params=621_424,
        macs_per_pixel=619_200,
        weights="compact.safetensors",
        sha256="432ff7ac9f2ac3d04e0ec8bafb6da21bc144afca8055a98eface9a5d37460a25",
        tier="gpu",
        receptive_radius=18,
        fallback="fast-plus",
    ),
    ModelSpec(
        name="srresnet",
        arch="srresnet",
        description="SRResNet (Ledig et al. 2017), PSNR-trained: the quality tier",
        params=1_546_435,
        macs_per_pixel=2_218_176,
        weights="srresnet.safetensors",
        sha256="5b7c16715f5b8beb6b57ea9c7e8776927c1e73296316055d5ba1d8d1ae8372b2",
        tier="quality",
        receptive_radius=40,
        fallback="compact",
    ),
    ModelSpec(
        name="srgan",
        arch="srresnet",
        description="SRGAN (Ledig et al. 2017), adversarially fine-tuned SRResNet: photo-realistic",
        params=1_546_435,
        macs_per_pixel=2_218_176,
        weights="srgan.safetensors",
        sha256="0e180f8890202c48aa24ad9b264f2b2bf491884cf0e18a0a3925538d1e9139f5",
        tier="quality",
        receptive_radius=40,
        fallback="compact",
    ),
)


LIVE_MODEL = "fast-tiny-stream"
"""The default model of every live command (stream, webcam, webrtc): on 2 CPU cores it kept 100 % of
a 30 fps 320x180 stream at full quality with 22 ms p95 added latency (scripts/stream_bench.py), and
it is trained for compressed input, which is what live video is. Its ladder falls back to bicubic."""


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
    """The catalogue entry called ``name``; raises :class:`ConfigError` naming the choices."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")


def new_network(arch: Arch) -> nn.Module:
    """A randomly initialised network of the given architecture (float32, train mode)."""
    from .arch import CompactNet, FastNet, SRResNet

    if arch == "fast":
        return FastNet()
    if arch == "fast-lite":
        return FastNet(widths=(48, 32, 32))
    if arch == "fast-tiny":
        return FastNet(widths=(32, 32))
    if arch == "fast-plus":
        return FastNet(widths=(48, 32, 32, 32, 32, 32, 32))
    if arch == "compact":
        return CompactNet()
    if arch == "srresnet":
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
    net = new_network(spec.arch)
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
