"""The ``vsr`` argument parser: every sub-command, its flags and their help. No logic of its own."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..backends import BACKEND_NAMES
from ..models.catalogue import LIVE_MODEL
from ..version import __version__
from .commands import bench, engine_build, engine_list, eval, stream, upscale, webcam, webrtc
from .models import add_models_parser

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, like every other vsr error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"vsr: error: {message} (see `{self.prog} --help`)\n")


def _add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale a video 4x (or --scale N, --width W, --height H)",
        description="Upscale a video 4x, or to the size --scale / --width / --height ask for.",
    )
    p.add_argument(
        "input",
        nargs="+",
        metavar="INPUT",
        help="input video file, or - for stdin; several files or a folder make a batch",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output file, or - for stdout; a folder for a batch (created if missing)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="a model of `vsr models` (shipped or added), or a model file (.pth .pt .ckpt .safetensors "
        ".onnx); default: fast-stream, or the native model of --scale (2x: fast-stream-x2)",
    )
    p.add_argument("--backend", default="auto", help=f"one of {', '.join(BACKEND_NAMES)} (default: auto)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    _add_size_flags(p)
    p.add_argument(
        "--tile",
        type=int,
        default=0,
        metavar="N",
        help="infer in N-pixel tiles with overlap (0: whole frame)",
    )
    p.add_argument("--batch", type=int, default=1, metavar="N", help="frames per inference call (default: 1)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for inference")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch on CUDA: compile the network (torch.compile, max-autotune): ~2x faster, slower start",
    )
    p.add_argument("--codec", default=None, help="video encoder (default: libx264; libvpx-vp9 for webm)")
    p.add_argument("--crf", type=int, default=None, help="constant-quality level (codec default if omitted)")
    p.add_argument("--preset", default=None, help="encoder speed preset (codec default if omitted)")
    p.add_argument(
        "--pix-fmt",
        default=None,
        help="output pixel format (default: yuv420p; for 10/12-bit input, its own depth when the codec takes it)",
    )
    p.add_argument("--format", default=None, help="output container, e.g. mp4, matroska, nut, mpegts")
    p.add_argument("--input-format", default=None, help="force the input demuxer (e.g. for stdin)")
    p.add_argument(
        "--no-deinterlace",
        action="store_true",
        help="upscale interlaced input as it is (default: deinterlace it with bwdif, one frame per frame)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming an interrupted job"
    )
    p.add_argument(
        "--segment-seconds",
        type=float,
        default=4.0,
        metavar="S",
        help="a file job is cut at keyframes into segments of at least S seconds (default: 4)",
    )
    p.add_argument("--json-stats", default=None, metavar="FILE", help="write run statistics as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings and errors only")
    _add_worker_flags(p)
    _add_face_flags(p)
    p.set_defaults(func=upscale)


def _add_worker_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "workers (Ray)",
        "Run a file job's segments in parallel on Ray workers, each with the model loaded once "
        "(pip install 'vsr[cluster]'; docs/cluster.md). The input must be a path every worker can read.",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="start a local Ray runtime on this machine with N workers (--threads each, default 1)",
    )
    g.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="join the Ray cluster at ADDRESS (HOST:PORT of `ray start --head`, or auto): "
        "--workers N workers, else one per GPU",
    )


def _add_size_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "output size",
        "Default: the model's scale (4x). --width/--height are display pixels: one alone keeps the "
        "aspect ratio (rounded to what --pix-fmt holds, e.g. even), both give that exact size; --scale "
        "excludes them. Without --model, a model of that native scale runs if the catalogue lists one; "
        "else the 4x model's output is resized in the RGB -> YUV conversion (area to shrink, lanczos "
        "past 4x).",
    )
    g.add_argument("--scale", type=int, choices=(2, 3, 4), default=None, help="output = N x the input")
    g.add_argument(
        "--width", type=int, default=None, metavar="W", help="output width; alone, height keeps the aspect"
    )
    g.add_argument(
        "--height", type=int, default=None, metavar="H", help="output height (e.g. 1080); both: exact size"
    )


def _add_face_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("face-region mode")
    g.add_argument(
        "--face", action="store_true", help="spend the face model on faces, a cheap model elsewhere"
    )
    g.add_argument("--face-model", default=None, help="model for faces (default: the best that fits)")
    g.add_argument("--background-model", default="bicubic", help="model for the rest (default: bicubic)")
    g.add_argument(
        "--face-detector", default="blazeface", help="blazeface, blazeface-full (small faces), haar"
    )
    g.add_argument(
        "--face-every", type=int, default=3, metavar="N", help="detect every N frames (default: 3)"
    )
    g.add_argument("--face-margin", type=float, default=0.3, help="crop margin x face size (default: 0.3)")


def build_parser() -> argparse.ArgumentParser:
    """The ``vsr`` argument parser with its sub-commands."""
    parser = _Parser(prog="vsr", description="Real-time 4x video super-resolution.")
    parser.add_argument("--version", action="version", version=f"vsr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_upscale(sub)
    add_models_parser(sub)
    _add_eval(sub)
    _add_bench(sub)
    _add_engine(sub)
    _add_stream(sub)
    _add_webcam(sub)
    _add_webrtc(sub)
    return parser


def _add_eval(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "eval",
        help="score models on an image set, or on low-bitrate video",
        description="Y-PSNR / SSIM of a model on HR images (--data), or VMAF, VMAF NEG, Y-PSNR, SSIM "
        "and flicker (tOF) of models beside bicubic, Lanczos and sharpened bicubic on clips sent "
        "small at a low bitrate (--video; docs/quality_video.md).",
    )
    e.add_argument(
        "--model",
        nargs="+",
        default=None,
        metavar="M",
        help="models or model files (--data: one; --video: any, default: fast fast-stream)",
    )
    e.add_argument("--backend", default="auto", help=f"one of {', '.join(BACKEND_NAMES)} (default: auto)")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", metavar="DIR", help="folder of HR images (or of image sets)")
    what.add_argument("--video", nargs="+", metavar="CLIP", help="clips (their first --seconds)")
    v = e.add_argument_group("video (--video)")
    v.add_argument(
        "--size", default="320x180", metavar="WxH", help="input size (default: 320x180); reference: --scale x"
    )
    v.add_argument(
        "--scale",
        type=int,
        default=None,
        choices=(2, 4),
        help="reference = scale x --size (default: the models' scale, else 4; x2 models: fast-x2)",
    )
    v.add_argument(
        "--kbps", nargs="+", type=float, default=[150.0], metavar="K", help="H.264 kbit/s (default: 150)"
    )
    v.add_argument("--seconds", type=float, default=4.0, help="from each clip's start (default: 4)")
    v.add_argument("--images", default=None, metavar="DIR", help="side-by-side crops of the first clip")
    v.add_argument("--no-vmaf", action="store_true", help="skip VMAF (no FFmpeg run)")
    e.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON")
    e.set_defaults(func=eval)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "bench",
        help="measure frames/s",
        description="Model-only and end-to-end frames/s for each model x backend x size, with the "
        "bicubic and ffmpeg baselines measured in the same run.",
    )
    b.add_argument("--model", nargs="+", default=["bicubic", "fast"], help="models (default: bicubic fast)")
    b.add_argument("--backend", nargs="+", default=["auto"], help="backends (default: auto)")
    b.add_argument(
        "--size", nargs="+", default=["320x180"], metavar="WxH", help="input sizes (default: 320x180)"
    )
    b.add_argument("--frames", type=int, default=100, help="timed frames per case (default: 100)")
    b.add_argument("--warmup", type=int, default=5, help="untimed frames first (default: 5)")
    b.add_argument("--batch", type=int, default=1, help="frames per inference call (default: 1)")
    b.add_argument(
        "--input", default=None, metavar="CLIP", help="clip to scale to each size (default: a sample)"
    )
    b.add_argument("--no-e2e", action="store_true", help="model-only: skip decode -> upscale -> encode runs")
    b.add_argument(
        "--random-weights",
        action="store_true",
        help="time models shipped without trained weights with random ones (speed does not depend on them)",
    )
    b.add_argument(
        "--compile",
        action="store_true",
        help="torch on CUDA: compile the networks (torch.compile, max-autotune; compile time not timed)",
    )
    b.add_argument(
        "--preset", default="veryfast", help="x264 preset of the end-to-end runs (default: veryfast)"
    )
    b.add_argument("--json", default=None, metavar="FILE", help="write the full report as JSON")
    b.add_argument("--plot", default=None, metavar="FILE.png", help="write a bar chart")
    b.set_defaults(func=bench)


def _add_engine(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("engine", help="build or list TensorRT engines", description="TensorRT engines.")
    esub = e.add_subparsers(dest="engine_command", required=True, metavar="ACTION")
    b = esub.add_parser("build", help="build (or reuse) an engine", description="Build a TensorRT engine.")
    b.add_argument("--model", required=True, help="catalogue model")
    b.add_argument("--profile", required=True, help="shape profile from engines/profiles.toml (e.g. p720)")
    b.add_argument("--fp32", action="store_true", help="build an FP32 engine (default: FP16)")
    b.set_defaults(func=engine_build)
    ls = esub.add_parser("list", help="list cached engines and profiles", description="List engines.")
    ls.set_defaults(func=engine_list)


def _add_stream(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "stream",
        help="upscale a live stream in real time",
        description="Upscale a live stream 4x in real time within a latency budget: when inference "
        "cannot keep up, frames are degraded to cheaper models, then bicubic, and dropped only as a "
        "last resort.",
    )
    s.add_argument("input", metavar="INPUT", help="- (stdin) or a tcp/udp/srt/rtmp/rtsp/HLS URL")
    s.add_argument(
        "output",
        metavar="OUTPUT",
        help="- (stdout, MPEG-TS), tcp/udp/srt URL (MPEG-TS), rtmp URL, or a directory (HLS)",
    )
    _add_live_model_flags(s, LIVE_MODEL, f"{LIVE_MODEL}, trained for compressed input")
    s.add_argument("--format", default=None, choices=("mpegts", "flv", "hls"), help="force the output muxer")
    s.add_argument("--input-format", default=None, help="force the input demuxer")
    s.add_argument("--reconnect", action="store_true", help="reconnect to a stalled or closed input")
    s.add_argument(
        "--reconnect-for", type=float, default=60.0, metavar="S", help="give up after S s (default: 60)"
    )
    s.add_argument("--stall-timeout", type=float, default=5.0, metavar="S", help="no data for S s = stalled")
    s.add_argument("--preset", default="ultrafast", help="x264 preset (default: ultrafast)")
    s.add_argument("--crf", type=int, default=23, help="x264 quality (default: 23)")
    s.add_argument("--json-stats", default=None, metavar="FILE", help="write run statistics as JSON")
    s.add_argument("-q", "--quiet", action="store_true", help="no status line, warnings and errors only")
    _add_face_flags(s)
    s.set_defaults(func=stream)


def _add_live_model_flags(p: argparse.ArgumentParser, model: str, why: str = "") -> None:
    """--model, --backend, --threads and --latency-budget, as every live command takes them."""
    p.add_argument(
        "--model", default=model, help=f"best model tier (see `vsr models`; default: {why or model})"
    )
    p.add_argument("--backend", default="auto", help=f"one of {', '.join(BACKEND_NAMES)} (default: auto)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for inference")
    p.add_argument(
        "--latency-budget",
        type=float,
        default=150.0,
        metavar="MS",
        help="added latency allowed (default: 150)",
    )


def _add_webcam(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "webcam",
        help="enhance a webcam live",
        description="Upscale a camera (or a file/URL played in real time) 4x live, within a latency "
        "budget, to a preview window, a virtual camera, a file or a stream.",
    )
    src = w.add_mutually_exclusive_group()
    src.add_argument(
        "--device", default=None, help="camera: /dev/video0, 0 (macOS), video=NAME, cv:N (OpenCV)"
    )
    src.add_argument("--input", default=None, metavar="FILE_OR_URL", help="play a file or URL instead")
    w.add_argument("--size", default=None, metavar="WxH", help="capture size (files are resized to it)")
    w.add_argument("--fps", type=float, default=None, help="capture frame rate (files are sampled to it)")
    w.add_argument(
        "-o",
        "--output",
        action="append",
        default=[],
        metavar="OUT",
        help="a video file, a `vsr stream` output (-, URL, HLS dir) or vcam (virtual camera); repeatable",
    )
    w.add_argument("--preview", action="store_true", help="show a window (needs a display and GUI OpenCV)")
    w.add_argument("--side-by-side", action="store_true", help="bicubic left, enhanced right")
    _add_live_model_flags(w, LIVE_MODEL, f"{LIVE_MODEL}, as every live command")
    w.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    w.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    w.add_argument("--json-stats", default=None, metavar="FILE", help="write run statistics as JSON")
    w.add_argument("-q", "--quiet", action="store_true", help="no status line, warnings and errors only")
    _add_face_flags(w)
    w.set_defaults(func=webcam)


def _add_webrtc(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "webrtc",
        help="serve the WebRTC page: your browser camera, enhanced",
        description="A WebRTC server (aiortc): the page sends the browser's camera, gets it back "
        "enhanced and shows both side by side with live fps and latency.",
    )
    r.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    r.add_argument("--allow-remote", action="store_true", help="needed to bind anything but loopback")
    r.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    _add_live_model_flags(r, LIVE_MODEL, f"{LIVE_MODEL}, as every live command")
    r.add_argument(
        "--max-bitrate",
        type=int,
        default=6000,
        metavar="KBPS",
        help="returned video's ceiling (default: 6000)",
    )
    r.add_argument("--max-peers", type=int, default=4, metavar="N", help="connections at once (default: 4)")
    _add_face_flags(r)
    r.set_defaults(func=webrtc)
