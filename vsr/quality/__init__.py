"""Video quality measurement: ``vsr eval --video`` (issue 15).

A clip's first seconds become a reference (4 x the input size) and a low-bandwidth input (area
downscale, then H.264 at a bitrate); models and baselines (bicubic, Lanczos, sharpened bicubic)
upscale it; each output is scored by VMAF and VMAF NEG (libvmaf in FFmpeg), Y-PSNR and Y-SSIM
(:mod:`vsr.metrics`) and TecoGAN's temporal flicker tOF.

>>> from vsr.quality import VideoEvalConfig, evaluate_video, format_video_table
>>> result = evaluate_video(VideoEvalConfig((Path("clip.mp4"),), models=("fast",)))
>>> print(format_video_table(result))
"""

from __future__ import annotations

from .baselines import BASELINES, LanczosBackend, UnsharpBackend, unsharp
from .clip import ClipPlan, iter_frames, plan_clip, probe, read_frames
from .codec import decode_frames, encode_h264, h264_roundtrip
from .flow import TofMeter, farneback, tof
from .report import format_video_table
from .run import VideoEvalConfig, evaluate_video
from .vmaf import VMAF_MODELS, Y4mWriter, find_vmaf_ffmpeg, run_vmaf

__all__ = [
    "BASELINES",
    "VMAF_MODELS",
    "ClipPlan",
    "LanczosBackend",
    "TofMeter",
    "UnsharpBackend",
    "VideoEvalConfig",
    "Y4mWriter",
    "decode_frames",
    "encode_h264",
    "evaluate_video",
    "farneback",
    "find_vmaf_ffmpeg",
    "format_video_table",
    "h264_roundtrip",
    "iter_frames",
    "plan_clip",
    "probe",
    "read_frames",
    "run_vmaf",
    "tof",
    "unsharp",
]
