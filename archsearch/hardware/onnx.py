"""Latency in a deployment runtime: ONNX Runtime's CPU provider on the ``torch.onnx``
export of the network.

PyTorch's eager latency is dominated, for small networks at batch 1, by the cost of
dispatching each operator from Python; a deployment runtime folds BatchNorm into the
convolutions, fuses activations and drops every operator whose result nothing reads. The two
runtimes therefore rank architectures differently (a NAS-Bench-201 cell whose node feeds
nothing costs its convolutions in PyTorch and nothing in ONNX Runtime), which is why a
hardware-aware search targets the runtime it deploys on.

The export uses the TorchScript-based exporter (``dynamo=False``): it exports a
NAS-Bench-201 network in about 0.2 s against 2-5 s for the ``torch.export`` path, which
decides whether a table of 15,625 networks takes hours or a day, and both give the same
operator graph for these convolutional networks. ONNX Runtime is the ``onnx`` extra
(``pip install 'archsearch[onnx]'``).
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence

import torch

from archsearch.errors import ArchsearchError
from archsearch.hardware.measure import Latency, _input, time_call

EXTRA_HINT = "ONNX Runtime latency needs the onnx extra: pip install 'archsearch[onnx]'"


def export_onnx(model: torch.nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> bytes:
    """The ONNX model (opset 17) of ``model`` in eval mode on a ``batch_size`` batch."""
    x = _input(model, input_shape, batch_size)
    if x.is_cuda:  # ONNX Runtime's CPU provider runs a CPU copy; the caller's model stays put
        model, x = copy.deepcopy(model).cpu(), x.cpu()
    was_training = model.training
    model.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
            torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17)
    finally:
        model.train(was_training)
    return buffer.getvalue()


def onnx_session(onnx_model: bytes, threads: int = 1):  # -> onnxruntime.InferenceSession
    """An ONNX Runtime CPU session with ``threads`` intra-op threads, one inter-op thread
    and every graph optimisation on, as a deployment would run it."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise ArchsearchError(EXTRA_HINT) from error
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])


def onnx_latency(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    threads: int = 1,
    threshold: float = 0.1,
    max_run_time: float = 2.0,
) -> Latency:
    """Latency of one run of ``model``'s ONNX export in ONNX Runtime on the CPU, timed by
    the same protocol as :func:`~archsearch.hardware.measure.measure_latency`."""
    session = onnx_session(export_onnx(model, input_shape, batch_size), threads)
    feed = {session.get_inputs()[0].name: _input(model, input_shape, batch_size).cpu().numpy()}
    return time_call(lambda: session.run(None, feed), threads, threshold, max_run_time)


def onnx_runtime_available() -> bool:
    """True when ONNX Runtime can be imported (the ``onnx`` extra is installed)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
