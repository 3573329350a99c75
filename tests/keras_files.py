"""Write `.keras` archives and store versions by hand, without TensorFlow, for fast tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from training.store import Store

Layer = tuple[np.ndarray, np.ndarray, str]  # kernel, bias, activation


def random_layers(seed: int = 0, sizes: tuple[int, ...] = (784, 32, 10)) -> list[Layer]:
    """A small random Dense stack ending in softmax."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        activation = "softmax" if i == len(sizes) - 2 else "relu"
        kernel = rng.normal(0, 0.1, (n_in, n_out)).astype(np.float32)
        layers.append((kernel, rng.normal(0, 0.1, n_out).astype(np.float32), activation))
    return layers


def keras_config(layers: list[Layer], extra_layers: list[dict[str, Any]] | None = None) -> dict:
    """A Keras 3 Sequential config.json for these layers."""
    entries: list[dict[str, Any]] = [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, layers[0][0].shape[0]]}}
    ]
    for i, (kernel, _, activation) in enumerate(layers):
        name = "dense" if i == 0 else f"dense_{i}"
        entries.append(
            {
                "class_name": "Dense",
                "config": {"name": name, "units": kernel.shape[1], "activation": activation,
                           "use_bias": True},
            }
        )  # fmt: skip
    entries += extra_layers or []
    return {"module": "keras", "class_name": "Sequential", "config": {"layers": entries}}


def weights_h5(layers: list[Layer]) -> bytes:
    """The bytes of a Keras 3 `model.weights.h5` holding these layers' kernels and biases."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for i, (kernel, bias, _) in enumerate(layers):
            group = h5.create_group(f"layers/{'dense' if i == 0 else f'dense_{i}'}/vars")
            group["0"], group["1"] = kernel, bias
    return buffer.getvalue()


def write_keras(path: Path, layers: list[Layer], config: dict | None = None) -> None:
    """A `.keras` zip: config.json, metadata.json and model.weights.h5."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config or keras_config(layers)))
        archive.writestr("model.weights.h5", weights_h5(layers))


def publish_layers(store: Store, layers: list[Layer], accuracy: float = 0.9) -> int:
    """Publish a hand-made model as the next version of `store`."""
    with store.publishing() as staging:
        write_keras(staging / "model.keras", layers)
        return store.commit(staging, {"metrics": {"accuracy": accuracy}, "recipe": {"name": "t"}})


def publish_beside(store: Store, files: dict[str, bytes | Path], model_of: int = 1) -> int:
    """Publish version `model_of`'s model.keras again with `files` beside it, as the next
    version: bytes are a file's content, a Path makes the file a symbolic link to it."""
    with store.publishing() as staging:
        (staging / "model.keras").write_bytes(
            (store.dir / str(model_of) / "model.keras").read_bytes()
        )
        for name, content in files.items():
            if isinstance(content, Path):
                (staging / name).symlink_to(content)
            else:
                (staging / name).write_bytes(content)
        return store.commit(staging, {"metrics": {"accuracy": 0.9}})


def write_keras_declaring(path: Path, kernel_shape: tuple[int, int], dtype: str = "f4") -> None:
    """A `.keras` of one Dense layer whose kernel declares `kernel_shape` in its HDF5
    metadata but stores no bytes (HDF5 reads its fill value): a small file, a huge read."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        group = h5.create_group("layers/dense/vars")
        group.create_dataset("0", shape=kernel_shape, dtype=dtype)
        group.create_dataset("1", shape=(kernel_shape[1],), dtype=dtype)
    kernel = np.zeros((kernel_shape[0], 1), np.float32)
    config = keras_config([(kernel, np.zeros(1, np.float32), "softmax")])
    config["config"]["layers"][1]["config"]["units"] = kernel_shape[1]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())
