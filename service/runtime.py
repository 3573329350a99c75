"""Read a Keras `.keras` archive and run its forward pass with ONNX Runtime, without
TensorFlow.

The course's `forward()` generalised: for each Dense layer, `x @ kernel + bias` and then its
activation. Only what this project trains is accepted (a Sequential stack of Dense layers
with known activations); anything else is refused with a message naming what was found,
because a `.keras` file is code as much as data (Lambda layers, custom objects).

The layers, read and checked here, are handed to ONNX Runtime as a graph of standard
operators (MatMul, Add, and the activation), built in memory: the store keeps `.keras`
files only. ONNX Runtime packs the kernels once, when the session is created; NumPy's
`x @ kernel` (OpenBLAS) packed the 784x512 kernel (1.6 MB) again at every call from three
rows up, so a batch of 3 cost 131 us against 34 here, and of 8, 162 us against 71
(`bench/forward.py`). The pass runs inline on the event loop, on one thread.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnxruntime
from onnx import TensorProto, helper

MAX_MEMBER_BYTES = 64 * 1024 * 1024  # a zip bomb must not get past the archive reader
# Weights a model may hold, all layers (float32: 64 MiB). The course's 784-512-10 network
# has 407,050; HDF5 declares a dataset's shape apart from its bytes, so a 30 KB file can
# ask for a 784 x 262,144 kernel (833 MB read as zeros): shapes are checked before data.
MAX_PARAMETERS = 16 * 1024 * 1024
ALLOWED_LAYERS = {"InputLayer", "Dense"}
# Keras activation -> the ONNX operator computing it (onnx.ai/onnx/operators); softmax over
# the last axis, as Keras's Dense does.
ACTIVATIONS = {
    "linear": "Identity",
    "relu": "Relu",
    "softmax": "Softmax",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
}
OPSET = 17  # Softmax over one axis (opset 13 on); supported by every ONNX Runtime 1.13+


class UnsupportedModel(Exception):
    """The archive is unreadable, or holds something other than a stack of Dense layers."""


@dataclass(frozen=True)
class DenseLayer:
    """One Dense layer: kernel (in, out) float32, bias (out,) float32, activation name;
    the arrays are made C-contiguous float32 (ONNX Runtime reads them in place)."""

    kernel: np.ndarray
    bias: np.ndarray
    activation: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", np.ascontiguousarray(self.kernel, np.float32))
        object.__setattr__(self, "bias", np.ascontiguousarray(self.bias, np.float32))


@dataclass(frozen=True)
class DenseModel:
    """A stack of Dense layers; `predict` maps (N, inputs) float32 to (N, outputs) float32,
    through an ONNX Runtime session built from the layers when the model is made."""

    layers: tuple[DenseLayer, ...]
    session: onnxruntime.InferenceSession = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "session", inference_session(self.layers))

    @property
    def input_size(self) -> int:
        return int(self.layers[0].kernel.shape[0])

    @property
    def output_size(self) -> int:
        return int(self.layers[-1].kernel.shape[1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The forward pass of (N, inputs) samples: (N, outputs) float32. ValueError for
        samples of another shape."""
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"samples of shape {x.shape}, not (N, {self.input_size})")
        return self.session.run(None, {"x": np.asarray(x, np.float32)})[0]


def inference_session(layers: tuple[DenseLayer, ...]) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session running the Dense stack on one thread: input `x`
    (N, inputs) float32, output (N, outputs) float32.

    The weights are not copied into the graph: it names them as external data, and the
    session reads them from the layers' own arrays (`add_external_initializers`), so
    building it costs one more copy of the weights (the packed kernels), not four (the
    graph's tensors, their serialisation, ONNX Runtime's parse): for the largest model
    allowed, a peak of ~70 MB instead of ~500 MB. The layers' arrays must outlive the
    session (`DenseModel` holds both)."""
    nodes, weights, values, current = [], [], [], "x"
    for i, layer in enumerate(layers):
        for name, array in ((f"kernel_{i}", layer.kernel), (f"bias_{i}", layer.bias)):
            weights.append(_external(name, array.shape))
            values.append((name, onnxruntime.OrtValue.ortvalue_from_numpy(array)))
        nodes += [
            helper.make_node("MatMul", [current, f"kernel_{i}"], [f"product_{i}"]),
            helper.make_node("Add", [f"product_{i}", f"bias_{i}"], [f"sum_{i}"]),
        ]
        operator = ACTIVATIONS[layer.activation]
        attributes = {"axis": -1} if operator == "Softmax" else {}
        nodes.append(helper.make_node(operator, [f"sum_{i}"], [f"out_{i}"], **attributes))
        current = f"out_{i}"
    inputs, outputs = layers[0].kernel.shape[0], layers[-1].kernel.shape[1]
    graph = helper.make_graph(
        nodes,
        "dense_stack",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", inputs])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["N", outputs])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # the workers are the parallelism: one core each
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    names, arrays = zip(*values, strict=True)
    options.add_external_initializers(list(names), list(arrays))
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _external(name: str, shape: tuple[int, ...]) -> TensorProto:
    """A float32 graph tensor whose data the session is given apart (external data)."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=name)
    return tensor


def load_keras(path: Path, sizes: tuple[int, int] | None = None) -> DenseModel:
    """Parse `model.keras` (config.json + model.weights.h5) into a `DenseModel`;
    UnsupportedModel for anything unreadable or not a Dense stack, and, when `sizes`
    (inputs, outputs) are given, for a model mapping others, before ONNX Runtime packs
    its kernels (a 1 x 5.6M kernel packs to 360 MB)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(_member(archive, "config.json"))
            weights = _member(archive, "model.weights.h5")
    # RuntimeError: an encrypted member, an unknown compression method (NotImplementedError),
    # JSON nested too deep (RecursionError).
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, RuntimeError) as exc:
        raise UnsupportedModel(f"{path}: not a readable .keras archive ({exc})") from exc
    try:
        specs = _dense_specs(config, path)
    except (AttributeError, TypeError) as exc:  # a config of the wrong shape: not a dict...
        raise UnsupportedModel(f"{path}: config.json is not a Keras model config ({exc})") from exc
    try:
        with h5py.File(io.BytesIO(weights), "r") as h5:
            groups = [_weights(h5, i, units) for i, (units, _) in enumerate(specs)]
            declared = sum(kernel.size + bias.size for kernel, bias in groups)
            if declared > MAX_PARAMETERS:
                raise ValueError(f"{declared} weights declared, over {MAX_PARAMETERS}")
            layers = tuple(
                DenseLayer(kernel[()], bias[()], activation)
                for (kernel, bias), (_, activation) in zip(groups, specs, strict=True)
            )
    # RuntimeError: HDF5 links that loop; OverflowError: addresses past what h5py can seek.
    except (
        OSError,
        KeyError,
        ValueError,
        TypeError,
        MemoryError,
        RuntimeError,
        OverflowError,
    ) as exc:
        raise UnsupportedModel(f"{path}: weights do not match the config ({exc})") from exc
    _check_shapes(layers, path)
    found = (layers[0].kernel.shape[0], layers[-1].kernel.shape[1])
    if sizes is not None and found != sizes:
        raise UnsupportedModel(
            f"{path}: model maps {found[0]} inputs to {found[1]} outputs, not "
            f"{sizes[0]} -> {sizes[1]}"
        )
    try:
        return DenseModel(layers)
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        raise UnsupportedModel(f"{path}: ONNX Runtime cannot run these layers ({exc})") from exc


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_MEMBER_BYTES:
        raise ValueError(f"{name} is {info.file_size} bytes, over {MAX_MEMBER_BYTES}")
    return archive.read(info)


def _dense_specs(config: dict[str, Any], path: Path) -> list[tuple[int, str]]:
    if config.get("class_name") != "Sequential":
        found = config.get("class_name")
        raise UnsupportedModel(f"{path}: model class {found!r} is not supported (Sequential only)")
    specs = []
    for layer in config.get("config", {}).get("layers", []):
        kind = layer.get("class_name")
        if kind not in ALLOWED_LAYERS:
            raise UnsupportedModel(f"{path}: layer {kind!r} is not supported (Dense only)")
        if kind == "Dense":
            cfg = layer.get("config", {})
            activation = cfg.get("activation")
            if activation not in ACTIVATIONS:
                raise UnsupportedModel(f"{path}: activation {activation!r} is not supported")
            if cfg.get("use_bias") is False:
                raise UnsupportedModel(f"{path}: Dense without bias is not supported")
            units = cfg.get("units")
            if not isinstance(units, int) or not 0 < units <= MAX_PARAMETERS:
                raise UnsupportedModel(f"{path}: Dense units {units!r} is not a usable size")
            specs.append((units, activation))
    if not specs:
        raise UnsupportedModel(f"{path}: no Dense layers")
    return specs


def _weights(h5: h5py.File, index: int, units: int) -> tuple[h5py.Dataset, h5py.Dataset]:
    """The kernel and bias datasets of Dense layer `index`, their shapes and dtypes checked
    against the config from the HDF5 metadata alone (ValueError), no data read."""
    # Keras 3 names weight groups by class in model order: dense, dense_1, dense_2, ...
    group = h5["layers"]["dense" if index == 0 else f"dense_{index}"]["vars"]
    kernel, bias = group["0"], group["1"]
    if not (isinstance(kernel, h5py.Dataset) and isinstance(bias, h5py.Dataset)):
        raise ValueError(f"layer {index}: weights are not datasets")
    for dataset in (kernel, bias):
        # Weights stored in other files (external storage, virtual datasets) would read any
        # file of the host, or block forever on a FIFO: only the archive's own bytes count.
        if dataset.external or dataset.is_virtual:
            raise ValueError(f"layer {index}: weights stored outside the file")
        if dataset.dtype.kind != "f" or dataset.dtype.itemsize > 8:
            raise ValueError(f"layer {index}: weights of type {dataset.dtype}, not float")
    if (
        len(kernel.shape) != 2
        or kernel.shape[1] != units
        or bias.shape != (units,)
        or not kernel.shape[0]
    ):
        raise ValueError(f"layer {index}: kernel {kernel.shape}, bias {bias.shape}, units {units}")
    return kernel, bias


def _check_shapes(layers: tuple[DenseLayer, ...], path: Path) -> None:
    for before, after in zip(layers, layers[1:], strict=False):
        if before.kernel.shape[1] != after.kernel.shape[0]:
            raise UnsupportedModel(f"{path}: layer sizes do not chain")
