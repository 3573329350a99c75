"""The NumPy runtime: reading .keras archives, refusing what it cannot run, Keras parity."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from service.runtime import MAX_PARAMETERS, UnsupportedModel, load_keras
from tests.conftest import SeedRun
from tests.keras_files import (
    keras_config,
    random_layers,
    weights_h5,
    write_keras,
    write_keras_declaring,
)
from tests.tools import traced_peak


def test_forward_pass_matches_a_hand_computation(tmp_path: Path) -> None:
    layers = random_layers(seed=3)
    write_keras(tmp_path / "m.keras", layers)
    model = load_keras(tmp_path / "m.keras")
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    hidden = np.maximum(x @ layers[0][0] + layers[0][1], 0)
    logits = hidden @ layers[1][0] + layers[1][1]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    assert (model.input_size, model.output_size) == (784, 10)


def test_lambda_layer_is_refused(tmp_path: Path) -> None:
    layers = random_layers()
    lam = {"class_name": "Lambda", "config": {"function": "print('pwned')"}}
    write_keras(tmp_path / "m.keras", layers, keras_config(layers, [lam]))
    with pytest.raises(UnsupportedModel, match="layer 'Lambda' is not supported"):
        load_keras(tmp_path / "m.keras")


def test_functional_model_is_refused(tmp_path: Path) -> None:
    layers = random_layers()
    config = {**keras_config(layers), "class_name": "Functional"}
    write_keras(tmp_path / "m.keras", layers, config)
    with pytest.raises(UnsupportedModel, match="model class 'Functional' is not supported"):
        load_keras(tmp_path / "m.keras")


def test_unknown_activation_is_refused(tmp_path: Path) -> None:
    layers = random_layers()
    layers[0] = (layers[0][0], layers[0][1], "gelu_custom")
    write_keras(tmp_path / "m.keras", layers)
    with pytest.raises(UnsupportedModel, match="activation 'gelu_custom' is not supported"):
        load_keras(tmp_path / "m.keras")


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    layers = random_layers()
    config = keras_config(layers)
    config["config"]["layers"][1]["config"]["units"] = 64
    write_keras(tmp_path / "m.keras", layers, config)
    with pytest.raises(UnsupportedModel, match="weights do not match the config"):
        load_keras(tmp_path / "m.keras")


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((784, 262_144), f"205783040 weights declared, over {MAX_PARAMETERS}"),  # issue 15: 833 MB
        ((784, 2**31), "not a usable size"),  # a MemoryError escaped the loader
    ],
)
def test_shapes_are_checked_from_the_metadata_before_any_weight_is_read(
    tmp_path: Path, shape: tuple[int, int], message: str
) -> None:
    write_keras_declaring(tmp_path / "m.keras", shape)
    assert (tmp_path / "m.keras").stat().st_size < 64 * 1024
    with traced_peak() as peak, pytest.raises(UnsupportedModel, match=message):
        load_keras(tmp_path / "m.keras")
    assert peak[0] < 8 * 1024 * 1024


def test_weights_that_are_not_floats_are_refused(tmp_path: Path) -> None:
    write_keras_declaring(tmp_path / "m.keras", (784, 10), dtype="S8")
    with pytest.raises(UnsupportedModel, match="weights of type |S8, not float"):
        load_keras(tmp_path / "m.keras")


@pytest.mark.parametrize("config", [[], {"class_name": "Sequential", "config": []}, "model"])
def test_a_config_of_the_wrong_shape_is_an_unsupported_model(
    tmp_path: Path, config: object
) -> None:
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(UnsupportedModel):
        load_keras(tmp_path / "m.keras")


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04 but not really")
    with pytest.raises(UnsupportedModel, match="not a readable .keras archive"):
        load_keras(tmp_path / "m.keras")


def test_zip_bomb_member_is_refused_unread(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "m.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b" " * (65 * 1024 * 1024))
    assert (tmp_path / "m.keras").stat().st_size < 1024 * 1024
    with pytest.raises(UnsupportedModel, match="config.json is 68157440 bytes, over"):
        load_keras(tmp_path / "m.keras")


@pytest.mark.integration
def test_parity_with_keras_on_a_trained_model(seed_store: SeedRun, mnist_dir: Path) -> None:
    import keras

    from training.data import load_idx_dir

    path = seed_store.root / "mnist" / "1" / "model.keras"
    x = load_idx_dir(mnist_dir).x_test[:1000].reshape(1000, 784).astype(np.float32) / 255
    ours = load_keras(path).predict(x.copy())
    theirs = keras.saving.load_model(path).predict(x, verbose=0)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_weights_stored_outside_the_archive_are_refused_unread(tmp_path: Path) -> None:
    """HDF5 external storage can point a dataset at any file of the host, or at a FIFO
    that blocks the loader (and the registry's lock) forever."""
    os.mkfifo(tmp_path / "fifo")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        group = h5.create_group("layers/dense/vars")
        group.create_dataset(
            "0",
            shape=(784, 10),
            dtype="f4",
            external=[(str(tmp_path / "fifo"), 0, h5py.h5f.UNLIMITED)],
        )
        group["1"] = np.zeros(10, np.float32)
    kernel = np.zeros((784, 10), np.float32)
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(keras_config([(kernel, kernel[0], "softmax")])))
        archive.writestr("model.weights.h5", buffer.getvalue())
    with pytest.raises(UnsupportedModel, match="weights stored outside the file"):
        load_keras(tmp_path / "m.keras")


def _archive(path: Path, config: bytes, weights: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", config)
        archive.writestr("model.weights.h5", weights)
    return path


def _set_in_zip_headers(path: Path, flags: int = 0, method: int | None = None) -> Path:
    """Set general-purpose flag bits and/or the compression method in every local and
    central header of a zip, in place."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            data[at + flag_at] |= flags
            if method is not None:
                data[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    return path


def _hostile_archive(kind: str, tmp_path: Path) -> Path:
    """Archives a hostile review found raising something other than UnsupportedModel."""
    layers = random_layers(sizes=(8, 4, 3))
    config = json.dumps(keras_config(layers)).encode()
    weights = weights_h5(layers)
    path = tmp_path / f"{kind}.keras"
    if kind == "json nested too deep":  # RecursionError
        return _archive(path, b"[" * 100_000, weights)
    if kind == "encrypted member":  # RuntimeError
        return _set_in_zip_headers(_archive(path, config, weights), flags=1)
    if kind == "unknown compression method":  # NotImplementedError
        return _set_in_zip_headers(_archive(path, config, weights), method=99)
    if kind == "hdf5 soft link loop":  # RuntimeError from HDF5
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as h5:
            h5["layers"] = h5py.SoftLink("/layers")
        return _archive(path, config, buffer.getvalue())
    assert kind == "hdf5 address past the end"  # OverflowError from h5py's file object
    broken = bytearray(weights)
    broken[52] = 0xEF  # superblock v0: the driver-info address, undefined (all 0xff) before
    return _archive(path, config, bytes(broken))


@pytest.mark.parametrize(
    "kind",
    [
        "json nested too deep",
        "encrypted member",
        "unknown compression method",
        "hdf5 soft link loop",
        "hdf5 address past the end",
    ],
)
def test_hostile_archives_are_unsupported_models(tmp_path: Path, kind: str) -> None:
    with pytest.raises(UnsupportedModel):
        load_keras(_hostile_archive(kind, tmp_path))


def test_a_kernel_of_no_inputs_is_refused(tmp_path: Path) -> None:
    layers = [(np.zeros((0, 10), np.float32), np.zeros(10, np.float32), "softmax")]
    write_keras(tmp_path / "m.keras", layers)
    with pytest.raises(UnsupportedModel, match=r"kernel \(0, 10\)"):
        load_keras(tmp_path / "m.keras")


def test_a_model_of_other_sizes_is_refused_before_its_kernels_are_packed(
    tmp_path: Path,
) -> None:
    """A 1 -> 5.6M -> 1 stack is within MAX_PARAMETERS, but ONNX Runtime packs a 1 x 5.6M
    kernel into 360 MB: asked for 784 -> 10, it is refused from the shapes, in a fresh
    interpreter whose peak memory shows no session was built."""
    wide = 5_590_000
    layers = [
        (np.zeros((1, wide), np.float32), np.zeros(wide, np.float32), "relu"),
        (np.zeros((wide, 1), np.float32), np.zeros(1, np.float32), "softmax"),
    ]
    write_keras(tmp_path / "m.keras", layers)
    script = (
        "import resource, sys\n"
        "from service.runtime import UnsupportedModel, load_keras\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    load_keras(sys.argv[1], (784, 10))\n"
        "except UnsupportedModel as exc:\n"
        "    print(exc)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.keras")],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out[0].endswith("model maps 1 inputs to 1 outputs, not 784 -> 10")
    assert int(out[1]) < 250, f"peak grew by {out[1]} MB"  # weights read: ~130 MB
