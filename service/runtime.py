"""Read a Keras `.keras` archive and run its forward pass in NumPy, without TensorFlow.

The course's `forward()` generalised: for each Dense layer, `x @ kernel + bias` and then its
activation. Only what this project trains is accepted (a Sequential stack of Dense layers
with known activations); anything else is refused with a message naming what was found,
because a `.keras` file is code as much as data (Lambda layers, custom objects).

The forward pass runs inline on the event loop: for one image it is ~0.4 M multiply-adds,
tens of microseconds, less than a hop to a worker thread costs (see bench/).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

MAX_MEMBER_BYTES = 64 * 1024 * 1024  # a zip bomb must not get past the archive reader
# Weights a model may hold, all layers (float32: 64 MiB). The course's 784-512-10 network
# has 407,050; HDF5 declares a dataset's shape apart from its bytes, so a 30 KB file can
# ask for a 784 x 262,144 kernel (833 MB read as zeros): shapes are checked before data.
MAX_PARAMETERS = 16 * 1024 * 1024
ALLOWED_LAYERS = {"InputLayer", "Dense"}


class UnsupportedModel(Exception):
    """The archive is unreadable, or holds something other than a stack of Dense layers."""


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": _relu,
    "softmax": _softmax,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}


@dataclass(frozen=True)
class DenseLayer:
    """One Dense layer: kernel (in, out), bias (out,), activation name."""

    kernel: np.ndarray
    bias: np.ndarray
    activation: str


@dataclass(frozen=True)
class DenseModel:
    """A stack of Dense layers; `predict` maps (N, inputs) float32 to (N, outputs)."""

    layers: tuple[DenseLayer, ...]

    @property
    def input_size(self) -> int:
        return int(self.layers[0].kernel.shape[0])

    @property
    def output_size(self) -> int:
        return int(self.layers[-1].kernel.shape[1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The forward pass: matmul, bias, activation, layer after layer."""
        return forward(self.layers, x)


def forward(layers: tuple[DenseLayer, ...], x: np.ndarray) -> np.ndarray:
    """Pure forward pass of a Dense stack on a float32 batch."""
    for layer in layers:
        x = x @ layer.kernel
        x += layer.bias
        x = ACTIVATIONS[layer.activation](x)
    return x


def load_keras(path: Path) -> DenseModel:
    """Parse `model.keras` (config.json + model.weights.h5) into a `DenseModel`."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(_member(archive, "config.json"))
            weights = _member(archive, "model.weights.h5")
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
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
                DenseLayer(
                    np.ascontiguousarray(kernel[()], dtype=np.float32),
                    np.asarray(bias[()], dtype=np.float32),
                    activation,
                )
                for (kernel, bias), (_, activation) in zip(groups, specs, strict=True)
            )
    except (OSError, KeyError, ValueError, TypeError, MemoryError) as exc:
        raise UnsupportedModel(f"{path}: weights do not match the config ({exc})") from exc
    _check_shapes(layers, path)
    return DenseModel(layers)


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
    if len(kernel.shape) != 2 or kernel.shape[1] != units or bias.shape != (units,):
        raise ValueError(f"layer {index}: kernel {kernel.shape}, bias {bias.shape}, units {units}")
    return kernel, bias


def _check_shapes(layers: tuple[DenseLayer, ...], path: Path) -> None:
    for before, after in zip(layers, layers[1:], strict=False):
        if before.kernel.shape[1] != after.kernel.shape[0]:
            raise UnsupportedModel(f"{path}: layer sizes do not chain")
