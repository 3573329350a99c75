"""Load MNIST from IDX files, an .npz archive or Keras's downloader, and validate it.

Every problem is reported as one `DataError` whose message names the file and what is wrong,
so the CLI can print a single line instead of a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IMAGE_SIDE = 28
NUM_CLASSES = 10

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DataError(Exception):
    """The data set is missing, unreadable or not MNIST-shaped."""


@dataclass(frozen=True)
class Dataset:
    """MNIST as uint8 arrays, with where it came from and a fingerprint of the files."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256

    @property
    def fingerprint(self) -> str:
        """One sha256 over the per-file digests, stable whatever the file order."""
        joined = "".join(f"{name}:{digest}\n" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()


def load_data(data_dir: Path | None = None, npz: Path | None = None) -> Dataset:
    """Load MNIST from `npz`, else `data_dir` (IDX files), else Keras's cached download."""
    if npz is not None:
        return load_npz(npz)
    if data_dir is not None:
        return load_idx_dir(data_dir)
    return load_keras_download()


def load_idx_dir(data_dir: Path) -> Dataset:
    """Read the four standard IDX files (gzipped or plain) from `data_dir`."""
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: not a directory holding the MNIST IDX files")
    arrays: dict[str, np.ndarray] = {}
    files: dict[str, str] = {}
    for key, stem in IDX_FILES.items():
        path = _find_idx_file(data_dir, stem)
        raw = _read_bytes(path)
        files[path.name] = hashlib.sha256(raw).hexdigest()
        arrays[key] = _parse_idx(raw, path, images=key.startswith("x"))
    return _validated(arrays, source=str(data_dir.resolve()), files=files)


def load_npz(path: Path) -> Dataset:
    """Read an .npz holding `x_train, y_train, x_test, y_test` (the keras.datasets layout)."""
    try:
        raw = path.read_bytes()
        # From the bytes read: np.load leaks the file it opened when the zip is damaged.
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            missing = sorted(set(IDX_FILES) - set(archive.files))
            if missing:
                raise DataError(f"{path}: missing arrays {', '.join(missing)}")
            arrays = {key: archive[key] for key in IDX_FILES}
    except DataError:
        raise
    # Empty, truncated, a bad CRC, a damaged deflate stream (np.savez_compressed, as Keras's).
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read as .npz ({exc})") from exc
    stored = sorted(key for key, array in arrays.items() if not isinstance(array, np.ndarray))
    if stored:  # np.load gives the bytes of a member that is no .npy
        raise DataError(f"{path}: {', '.join(stored)} not stored as NumPy arrays (.npy)")
    files = {path.name: hashlib.sha256(raw).hexdigest()}
    return _validated(arrays, source=str(path.resolve()), files=files)


def load_keras_download() -> Dataset:
    """Download (or reuse Keras's cache of) mnist.npz; needs internet the first time."""
    import keras  # deferred: the other loaders must not pay for importing TensorFlow

    try:
        path = keras.utils.get_file(
            "mnist.npz",
            origin="https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
            file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        )
    except Exception as exc:  # Keras wraps network errors in several exception types
        raise DataError(f"keras download of mnist.npz failed ({exc}); use --data-dir") from exc
    return load_npz(Path(path))


def _find_idx_file(data_dir: Path, stem: str) -> Path:
    # The official names use '-idx3-ubyte'; some mirrors use '.idx3-ubyte'.
    dotted = stem.replace("-idx", ".idx")
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataError(f"{data_dir / stem}.gz: not found (nor its uncompressed form)")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc


def _parse_idx(raw: bytes, path: Path, *, images: bool) -> np.ndarray:
    magic = IMAGE_MAGIC if images else LABEL_MAGIC
    ndim = 3 if images else 1
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: bad IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = math.prod(dims)  # Python integers: NumPy's product of 2**22 * 2**22 * 2**20 is 0
    body = len(raw) - header_len
    if body != expected:
        raise DataError(f"{path}: header says {dims} ({expected} bytes) but holds {body} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def _validated(arrays: dict[str, np.ndarray], source: str, files: dict[str, str]) -> Dataset:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        _check_pair(x, y, split, source)
    return Dataset(**arrays, source=source, files=files)


def _check_pair(x: np.ndarray, y: np.ndarray, split: str, source: str) -> None:
    where = f"{source} ({split})"
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{where}: images are {x.dtype} {x.shape}, expected uint8 (N, 28, 28)")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels are {y.dtype} {y.shape}, expected integers (N,)")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{where}: no samples")
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise DataError(f"{where}: labels outside 0..9 (found {y.min()}..{y.max()})")
