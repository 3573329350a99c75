"""Training recipes: hyper-parameters as data, one frozen dataclass per recipe.

The architecture is not part of a recipe: every recipe trains the same 784-512-10 network,
so every version the store holds can be served by the same runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

# The settings of `Augmentation` that turn a distortion on; the others only shape one.
DISTORTIONS = ("rotation_degrees", "scale", "shear", "shift_pixels", "elastic_alpha", "degraded")


@dataclass(frozen=True)
class Augmentation:
    """Random geometric distortions applied in the input pipeline, never inside the model."""

    rotation_degrees: float = 0.0
    scale: float = 0.0  # relative: 0.1 means a factor in [0.9, 1.1]
    shear: float = 0.0
    shift_pixels: float = 0.0
    elastic_alpha: float = 0.0  # largest elastic displacement in pixels; 0 turns it off
    elastic_sigma: float = 4.0  # smoothness of the elastic field, in pixels
    probability: float = 1.0  # fraction of the images distorted each epoch; the rest stay clean
    final_probability: float | None = None  # if set, the fraction moves linearly to this
    # Fraction of the images degraded as real uploads are (training/degrade.py): strokes a
    # pixel thicker or thinner, blur up to blur_sigma pixels, or seen at low_resolution.
    degraded: float = 0.0
    blur_sigma: float = 1.2
    low_resolution: int = 10

    @property
    def enabled(self) -> bool:
        return any(getattr(self, setting) for setting in DISTORTIONS)


@dataclass(frozen=True)
class Recipe:
    """Everything `fit()` needs besides the data; recorded whole in the manifest."""

    name: str
    optimizer: str = "rmsprop"
    learning_rate: float = 0.001
    schedule: str = "constant"  # or "warmup_cosine"
    warmup_fraction: float = 0.0
    ema_momentum: float | None = None  # average the weights (Keras optimizer EMA) when set
    epochs: int = 5
    batch_size: int = 128
    validation_split: float = 0.1
    augmentation: Augmentation = Augmentation()
    seed: int = 1234

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain JSON-ready data."""
        return asdict(self)

    def with_overrides(self, **changes: Any) -> Recipe:
        """A copy with some fields replaced (CLI flags such as --epochs, --seed)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# The course, exactly: rmsprop, categorical cross-entropy, 5 epochs of batches of 128.
SEED = Recipe(name="seed")

# Same network; Adam with warm-up, cosine decay and weight averaging, on digits distorted by
# rotation, shear and elastic fields (Simard et al., 2003) about their own centre of mass:
# MNIST digits are centred by mass, so shifts and rescaling would only teach the perceptron
# positions and sizes the test set never shows. The share of distorted images falls from all
# to 30% over the run, so the last epochs look like the test set. Half the images are also
# degraded as real uploads are after preprocessing (training/degrade.py: strokes a pixel
# thicker or thinner, blur, low resolution): 99.2% on MNIST either way, and the UCI digits
# (8x8 scans) read 94-95% instead of 93-95% (issue 13's note). About a minute here, on two
# cores (limit: five minutes); see the note on issue 2 for what each choice measured.
BEST = Recipe(
    name="best",
    optimizer="adam",
    learning_rate=0.002,
    schedule="warmup_cosine",
    warmup_fraction=0.05,
    ema_momentum=0.9995,
    epochs=32,
    batch_size=128,
    validation_split=0.02,
    augmentation=Augmentation(
        rotation_degrees=12.0,
        shear=0.15,
        elastic_alpha=2.0,
        elastic_sigma=4.0,
        probability=1.0,
        final_probability=0.3,
        degraded=0.5,
    ),
)

# The ceiling of this very network (issue 17): `best`, nine times as long. The same 32-epoch
# schedule stretched to 280 epochs keeps the warm-up, cosine decay and the fall from all to
# 30% distorted digits in proportion; on the GPU figures of the issue, affine and elastic
# distortions for 150 epochs gave 99.30%. Measured here (seeds 1, 2, 3): 99.34%, 99.32%,
# 99.36% in 8.2-10.2 minutes of training (docs/max-recipe.png, issue 17's note).
MAX = replace(BEST, name="max", epochs=280)

RECIPES = {recipe.name: recipe for recipe in (SEED, BEST, MAX)}
