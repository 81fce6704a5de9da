"""A recording stand-in for the parts of the TensorRT 10 Python API that vsr's builder calls.

Not a TensorRT: it checks that vsr calls the documented API in a sensible order with the right
values. :func:`stand_in_tensorrt` returns a module-like namespace; every call lands in ``calls``.
"""

from __future__ import annotations

from types import SimpleNamespace


class _Tensor:
    def __init__(self, calls: list, name: str) -> None:
        self.calls, self.name, self._dtype = calls, name, "FLOAT"

    @property
    def dtype(self) -> str:
        return self._dtype

    @dtype.setter
    def dtype(self, value: str) -> None:
        self.calls.append(("dtype", self.name, value))
        self._dtype = value


class _Network:
    def __init__(self) -> None:
        self.inputs: list[_Tensor] = []
        self.outputs: list[_Tensor] = []

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]

    def get_output(self, i: int) -> _Tensor:
        return self.outputs[i]


class _TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+"  # each build adds to the cache


class _Profile:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
        self.calls.append(("shape", name, tuple(lo), tuple(opt), tuple(hi)))


class _Config:
    def __init__(self, calls: list) -> None:
        self.calls, self.progress_monitor, self.builder_optimization_level = calls, None, 3

    def set_flag(self, flag: str) -> None:
        self.calls.append(("set_flag", flag))

    def clear_flag(self, flag: str) -> None:
        self.calls.append(("clear_flag", flag))

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.calls.append(("pool", pool, size))

    def add_optimization_profile(self, profile: _Profile) -> None:
        self.calls.append(("add_profile",))

    def create_timing_cache(self, data: bytes) -> _TimingCache:
        return _TimingCache(bytes(data))

    def set_timing_cache(self, cache: _TimingCache, ignore_mismatch: bool) -> bool:
        self.calls.append(("timing_cache", cache.data))
        self.cache = cache
        return True

    def get_timing_cache(self) -> _TimingCache:
        return self.cache


def stand_in_tensorrt(calls: list, *, parse_ok: bool = True, build_ok: bool = True) -> SimpleNamespace:
    """The stand-in module. ``parse_ok`` / ``build_ok`` False make parsing / building fail."""
    import onnx

    class OnnxParser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network: _Network, logger: object) -> None:
            self.network = network

        def parse_from_file(self, path: str) -> bool:
            graph = onnx.load(path).graph  # the real graph's tensor names
            self.network.inputs = [_Tensor(calls, t.name) for t in graph.input]
            self.network.outputs = [_Tensor(calls, t.name) for t in graph.output]
            return parse_ok

        def get_error(self, i: int) -> str:
            return "Unsupported op Foo"

    class Builder:
        def __init__(self, logger: object) -> None:
            pass

        def create_network(self, flags: int) -> _Network:
            calls.append(("create_network", flags))
            return _Network()

        def create_builder_config(self) -> _Config:
            return _Config(calls)

        def create_optimization_profile(self) -> _Profile:
            return _Profile(calls)

        def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
            calls.append(("build", config.builder_optimization_level))
            monitor = config.progress_monitor
            monitor.phase_start("Building engine", None, 2)
            assert monitor.step_complete("Building engine", 0) is True
            monitor.phase_finish("Building engine")
            return b"FAKE-ENGINE:" + repr(sorted(map(str, calls))).encode() if build_ok else None

    return SimpleNamespace(
        __version__="10.9.0",
        Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
        Builder=Builder,
        OnnxParser=OnnxParser,
        IProgressMonitor=type("IProgressMonitor", (), {"__init__": lambda self: None}),
        BuilderFlag=SimpleNamespace(FP16="FP16", TF32="TF32"),
        DataType=SimpleNamespace(HALF="HALF"),
        MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
    )
