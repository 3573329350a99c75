"""The NumPy runtime: reading .keras archives, refusing what it cannot run, Keras parity."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from service.runtime import MAX_PARAMETERS, UnsupportedModel, load_keras
from tests.conftest import SeedRun
from tests.keras_files import keras_config, random_layers, write_keras, write_keras_declaring


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
    tracemalloc.start()
    try:
        with pytest.raises(UnsupportedModel, match=message):
            load_keras(tmp_path / "m.keras")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


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
