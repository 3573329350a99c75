"""The candidates for the image work of `service/imaging/`: OpenCV, scikit-image and SciPy's
ndimage, on the operations the pipeline uses, with what each adds to a worker.

For each library: the time of each operation on the sizes the pipeline uses them at (a
grey closing by a 31 px disc on a 96 px picture, a median over half of a 48 px one, Otsu's
threshold and connected components with their areas and boxes on a 256 px one, area
resizing 256 -> 96 px); its import time and the resident memory the import adds, each in a
fresh interpreter; and its installed size.

    .venv/bin/python bench/image_libraries.py
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import timeit

import numpy as np

DISTRIBUTIONS = {
    "opencv": ["opencv-python-headless"],
    "scikit-image": ["scikit-image", "scipy", "imageio", "tifffile", "lazy-loader", "networkx"],
    "scipy.ndimage": ["scipy"],
}
IMPORTS = {
    "opencv": "import cv2",
    "scikit-image": "from skimage import filters, measure, morphology, transform",
    "scipy.ndimage": "import scipy.ndimage",
}
MEMORY = """
import time
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024
import numpy, PIL.Image
before, start = rss(), time.perf_counter()
{statement}
print(time.perf_counter() - start, rss() - before)
"""


def pictures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    big = (200 + rng.normal(0, 4, (256, 256))).astype(np.float32)
    big[60:200, 120:135] = 40
    big[60:75, 80:135] = 40
    return {"256": big, "96": big[::2, ::2][:96, :96].copy(), "48": big[::5, ::5][:48, :48].copy()}


def opencv_ops(p: dict[str, np.ndarray]) -> dict[str, object]:
    import cv2

    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (31, 31))
    mask = (p["256"] < 120).astype(np.uint8)
    u8 = p["48"].astype(np.uint8)
    return {
        "closing": lambda: cv2.morphologyEx(p["96"], cv2.MORPH_CLOSE, disc),
        "median": lambda: cv2.medianBlur(u8, 25),
        "otsu": lambda: cv2.threshold(
            p["256"].astype(np.uint8), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU
        ),
        "components": lambda: cv2.connectedComponentsWithStats(mask, connectivity=8),
        "resize_area": lambda: cv2.resize(p["256"], (96, 96), interpolation=cv2.INTER_AREA),
    }


def skimage_ops(p: dict[str, np.ndarray]) -> dict[str, object]:
    from skimage import filters, measure, morphology, transform

    disc = morphology.disk(15)
    mask = p["256"] < 120
    u8 = p["48"].astype(np.uint8)
    return {
        "closing": lambda: morphology.closing(p["96"], disc),
        "median": lambda: filters.median(u8, morphology.disk(12)),
        "otsu": lambda: filters.threshold_otsu(p["256"]),
        "components": lambda: measure.regionprops(measure.label(mask, connectivity=2)),
        "resize_area": lambda: transform.resize(p["256"], (96, 96), anti_aliasing=True),
    }


def scipy_ops(p: dict[str, np.ndarray]) -> dict[str, object]:
    from scipy import ndimage

    rows, cols = np.indices((31, 31))
    disc = np.hypot(rows - 15, cols - 15) <= 15
    mask = p["256"] < 120

    def components() -> object:
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        return ndimage.find_objects(labels), ndimage.sum_labels(mask, labels, range(count + 1))

    return {
        "closing": lambda: ndimage.grey_closing(p["96"], footprint=disc),
        "median": lambda: ndimage.median_filter(p["48"], footprint=morphology_disc(12)),
        "otsu": lambda: None,  # none in ndimage: it would be ours (or scikit-image's)
        "components": components,
        "resize_area": lambda: ndimage.zoom(p["256"], 96 / 256, order=1),  # no area mode
    }


def morphology_disc(radius: int) -> np.ndarray:
    rows, cols = np.indices((2 * radius + 1, 2 * radius + 1))
    return np.hypot(rows - radius, cols - radius) <= radius


def installed_megabytes(names: list[str]) -> float:
    total = 0
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        total += sum(f.locate().stat().st_size for f in dist.files or [] if f.locate().exists())
    return total / 2**20


def main() -> int:
    p = pictures()
    candidates = {"opencv": opencv_ops, "scikit-image": skimage_ops, "scipy.ndimage": scipy_ops}
    print(f"{'library':<15}{'op':<13}{'us':>10}")
    for name, ops in candidates.items():
        for op, call in ops(p).items():
            runs = timeit.repeat(call, number=20, repeat=5)  # type: ignore[arg-type]
            print(f"{name:<15}{op:<13}{min(runs) / 20 * 1e6:>10.0f}")
    print(f"\n{'library':<15}{'import s':>10}{'RSS MB':>9}{'installed MB':>14}")
    for name, statement in IMPORTS.items():
        code = MEMORY.format(statement=statement)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        seconds, megabytes = (float(v) for v in done.stdout.split())
        size = installed_megabytes(DISTRIBUTIONS[name])
        print(f"{name:<15}{seconds:>10.2f}{megabytes:>9.0f}{size:>14.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
