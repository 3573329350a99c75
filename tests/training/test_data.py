"""Loading and validating MNIST from IDX folders and .npz archives."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.idx_files import synthetic_mnist, write_idx
from training.data import IDX_FILES, DataError, load_data, load_idx_dir, load_npz


def test_loads_gzipped_idx_folder(idx_dir: Path) -> None:
    data = load_idx_dir(idx_dir)
    expected = synthetic_mnist()
    assert data.x_train.shape == (60, 28, 28) and data.x_train.dtype == np.uint8
    np.testing.assert_array_equal(data.x_test, expected["x_test"])
    np.testing.assert_array_equal(data.y_train, expected["y_train"])
    assert sorted(data.files) == sorted(f"{name}.gz" for name in IDX_FILES.values())


def test_loads_plain_idx_files_and_the_dotted_names(tmp_path: Path) -> None:
    for key, array in synthetic_mnist().items():
        write_idx(tmp_path / IDX_FILES[key].replace("-idx", ".idx"), array)
    assert len(load_idx_dir(tmp_path).y_test) == 20


def test_fingerprint_is_stable_and_tracks_content(idx_dir: Path) -> None:
    first = load_idx_dir(idx_dir).fingerprint
    assert load_idx_dir(idx_dir).fingerprint == first
    labels = synthetic_mnist()["y_test"].copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", labels)
    assert load_idx_dir(idx_dir).fingerprint != first


def test_the_source_is_recorded_as_an_absolute_path(
    idx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest says where the data came from: `../shared/data/mnist` as typed means
    nothing once read elsewhere (a newcomer)."""
    monkeypatch.chdir(idx_dir.parent)
    assert load_idx_dir(Path(idx_dir.name)).source == str(idx_dir.resolve())
    np.savez(idx_dir.parent / "mnist.npz", **synthetic_mnist())
    assert load_npz(Path("mnist.npz")).source == str(idx_dir.parent.resolve() / "mnist.npz")


def test_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere: not a directory"):
        load_data(tmp_path / "nowhere")


def test_missing_file_names_it(idx_dir: Path) -> None:
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: not found"):
        load_idx_dir(idx_dir)


def test_bad_magic_number_is_reported(idx_dir: Path) -> None:
    path = idx_dir / "train-images-idx3-ubyte.gz"
    write_idx(path, synthetic_mnist()["x_train"], magic=0x12345678)
    with pytest.raises(DataError) as err:
        load_idx_dir(idx_dir)
    assert str(err.value) == f"{path}: bad IDX magic number 0x12345678, expected 0x00000803"


def test_labels_file_with_image_magic_is_rejected(idx_dir: Path) -> None:
    labels = synthetic_mnist()["y_train"]
    write_idx(idx_dir / "train-labels-idx1-ubyte.gz", labels, magic=0x00000803)
    with pytest.raises(DataError, match="bad IDX magic number 0x00000803, expected 0x00000801"):
        load_idx_dir(idx_dir)


def test_truncated_file_is_reported(idx_dir: Path) -> None:
    path = idx_dir / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"header says \[20, 28, 28\] \(15680 bytes\) but holds"):
        load_idx_dir(idx_dir)


def test_truncated_header_is_reported(idx_dir: Path) -> None:
    (idx_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00"))
    with pytest.raises(DataError, match="truncated header"):
        load_idx_dir(idx_dir)


def test_corrupt_gzip_is_reported(idx_dir: Path) -> None:
    path = idx_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: cannot read"):
        load_idx_dir(idx_dir)


def test_a_gzip_with_corrupt_compressed_data_is_reported(idx_dir: Path) -> None:
    path = idx_dir / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[20:40] = b"\xff" * 20  # the deflate stream, not the header: zlib.error
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: cannot read"):
        load_idx_dir(idx_dir)


def test_a_header_whose_sizes_overflow_int64_is_reported(idx_dir: Path) -> None:
    # 2**22 * 2**22 * 2**20 images: NumPy's product wraps to 0, which an empty body matched.
    header = (0x803).to_bytes(4, "big") + b"".join(
        n.to_bytes(4, "big") for n in (2**22, 2**22, 2**20)
    )
    (idx_dir / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header))
    with pytest.raises(DataError, match=r"header says .* \(18446744073709551616 bytes\) but "):
        load_idx_dir(idx_dir)


def test_image_and_label_counts_must_match(idx_dir: Path) -> None:
    write_idx(idx_dir / "train-labels-idx1-ubyte.gz", synthetic_mnist()["y_train"][:59])
    with pytest.raises(DataError, match=r"\(train\): 60 images but 59 labels"):
        load_idx_dir(idx_dir)


def test_labels_must_be_digits(idx_dir: Path) -> None:
    labels = synthetic_mnist()["y_test"].copy()
    labels[3] = 12
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError, match=r"\(test\): labels outside 0\.\.9 \(found 0\.\.12\)"):
        load_idx_dir(idx_dir)


def test_images_must_be_28_by_28(idx_dir: Path) -> None:
    write_idx(idx_dir / "t10k-images-idx3-ubyte.gz", np.zeros((20, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"expected uint8 \(N, 28, 28\)"):
        load_idx_dir(idx_dir)


def test_loads_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "mnist.npz", **synthetic_mnist())
    data = load_data(npz=tmp_path / "mnist.npz")
    assert data.x_train.shape == (60, 28, 28)
    assert list(data.files) == ["mnist.npz"]


def test_npz_missing_arrays_are_named(tmp_path: Path) -> None:
    arrays = synthetic_mnist()
    del arrays["y_test"]
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(DataError, match="mnist.npz: missing arrays y_test"):
        load_npz(tmp_path / "mnist.npz")


def test_npz_that_is_not_npz(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_text("hello")
    with pytest.raises(DataError, match="mnist.npz: cannot read as .npz"):
        load_npz(tmp_path / "mnist.npz")


@pytest.mark.parametrize("damage", ["empty", "truncated", "bad crc", "not npy", "bad deflate"])
def test_a_damaged_npz_is_one_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "mnist.npz"
    # Compressed, as Keras's mnist.npz is: its deflate streams can be damaged too.
    (np.savez_compressed if damage == "bad deflate" else np.savez)(path, **synthetic_mnist())
    raw = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "bad deflate":
        with zipfile.ZipFile(path) as archive:
            member = archive.getinfo("x_train.npy")
        at = member.header_offset + 30 + len(member.filename) + len(member.extra) + 40
        path.write_bytes(raw[:at] + b"\xff" * 8 + raw[at + 8 :])
    elif damage == "bad crc":
        with zipfile.ZipFile(path) as archive:
            member = archive.getinfo("x_test.npy")
        at = member.header_offset + 30 + len(member.filename) + 200  # inside its data
        path.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :])
    else:
        with zipfile.ZipFile(path, "w") as archive:
            for key in IDX_FILES:
                archive.writestr(key, b"not an array")
    with pytest.raises(DataError, match="mnist.npz: "):
        load_npz(path)


def test_real_mnist_has_the_official_counts(mnist_dir: Path) -> None:
    data = load_idx_dir(mnist_dir)
    assert (len(data.x_train), len(data.x_test)) == (60000, 10000)
    assert np.bincount(data.y_test).tolist()[:3] == [980, 1135, 1032]
