"""A cluster job's workers run the driver's model (issue 16 review), without Ray: the driver
sends a model-file path made absolute and the weights' sha256, and a worker whose own resolution
of the name gives other weights refuses in one line. The same through a real Ray pool:
tests/test_cluster.py::test_a_worker_with_other_weights_fails_the_job_in_one_line."""

from __future__ import annotations

import pytest
from tiny_onnx import tiny_onnx

from vsr.cluster.identity import for_workers
from vsr.cluster.worker import SegmentWorker
from vsr.config import ModelConfig
from vsr.errors import ModelError
from vsr.models.integrity import file_sha256

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def test_the_driver_sends_an_absolute_path_and_the_weights_sha256(tmp_path, monkeypatch) -> None:
    path = tiny_onnx(tmp_path / "x2.onnx")
    monkeypatch.chdir(tmp_path)
    setup = for_workers(ModelConfig("./x2.onnx", "onnx", threads=1))
    assert setup.model == ModelConfig(str(path), "onnx", threads=1)
    assert setup.sha256 == file_sha256(path)
    bicubic = for_workers(ModelConfig("bicubic"))
    assert bicubic.model == ModelConfig("bicubic") and bicubic.sha256 is None


def test_a_worker_refuses_other_weights_in_one_line(tmp_path) -> None:
    path = tiny_onnx(tmp_path / "x2.onnx")
    model = ModelConfig(str(path), "onnx", threads=1)
    worker = SegmentWorker(model, "ab" * 32)
    try:
        with pytest.raises(ModelError, match="is not the driver's") as caught:
            worker.info()
        assert "abababababab" in str(caught.value) and "\n" not in str(caught.value)
    finally:
        worker.close()
    worker = SegmentWorker(model, file_sha256(path))
    try:  # (info() would ask Ray for the node id)
        assert worker.error is None and worker.ladder is not None and worker.ladder.scale == 2
    finally:
        worker.close()
