"""Live webcam enhancement (``vsr webcam``): a camera, or a file/URL played in real time, upscaled
4x within a latency budget and sent to a preview window, a virtual camera, a file or a stream.

``import vsr.webcam`` needs only numpy, av and opencv; pyvirtualcam is imported only for a
virtual-camera output.

>>> from vsr.webcam import WebcamConfig, run_webcam
>>> stats = run_webcam(WebcamConfig(input="clip.mp4", model="bicubic", outputs=("out.mp4",)))
"""

from __future__ import annotations

from .capture import Captured, FileSource, OpenCVCamera, PyAVCamera, open_source
from .config import VCAM, WebcamConfig, default_camera, output_kind, parse_size
from .live import run_webcam, side_by_side, webcam_ladder
from .outputs import FileOutput, PreviewOutput, StreamOutput, VirtualCamera, open_outputs, preview_unavailable

__all__ = [
    "VCAM",
    "Captured",
    "FileOutput",
    "FileSource",
    "OpenCVCamera",
    "PreviewOutput",
    "PyAVCamera",
    "StreamOutput",
    "VirtualCamera",
    "WebcamConfig",
    "default_camera",
    "open_outputs",
    "open_source",
    "output_kind",
    "parse_size",
    "preview_unavailable",
    "run_webcam",
    "side_by_side",
    "webcam_ladder",
]
