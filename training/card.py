"""What a version is, for people: its model card (`model-card.md` in the version folder,
served at `GET /v1/models/{version}/card`) and the few lines `mnist-models show` prints.
Both are pure functions of the version's manifest; the card's pictures
(`training-curves.png`, `confusion-matrix.png`) sit beside it.

The card's sections follow Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019):
model details, intended use, data, metrics, evaluation (here also on the kinds of upload
people really send), and the decision that let it into the store.
"""

from __future__ import annotations

from typing import Any

from training.recipes import DISTORTIONS

CARD = "model-card.md"
CURVES = "training-curves.png"
CONFUSION = "confusion-matrix.png"


def model_card(manifest: dict[str, Any], name: str) -> str:
    """The card, as Markdown, of a version whose manifest is `manifest` (the body
    `training.publish.build_manifest` makes, with `real_world` and `gate`; the version
    number is not in it: the store assigns it when the version is committed)."""
    recipe, data, metrics = manifest["recipe"], manifest["data"], manifest["metrics"]
    training, model = manifest["training"], manifest["model"]
    lines = [
        f"# Model card: {name}, recipe `{recipe['name']}`",
        "",
        f"Created {manifest['created_at']}. {model['architecture']}, "
        f"{model['parameters']:,} parameters; input (784,) float32 in [0, 1] (a 28x28 MNIST "
        "sample, white ink on black), output the probabilities of the digits 0-9.",
        "",
        "## Intended use",
        "",
        "One handwritten digit per image: photos of paper, pen and canvas drawings, scans, "
        "as the service reads them. Not for several digits, letters, or deciding anything "
        'about the writer. An image with no digit is answered "no digit" by the service\'s '
        "preprocessing, not by this model.",
        "",
        "## Data",
        "",
        f"- source: {data['source']}",
        f"- fingerprint (sha256 of the data files' sha256s): `{data['fingerprint']}`",
        f"- {data['train_samples']:,} training images, {data['test_samples']:,} test images",
        "",
        "## Recipe",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {key} | {_value(value)} |" for key, value in recipe.items() if key != "augmentation"),
        f"| augmentation | {_augmentation(recipe.get('augmentation') or {})} |",
        "",
        "## Training",
        "",
        f"{training['epochs']} epochs in {training['duration_seconds']:.1f} s; final "
        + ", ".join(f"{k} {v:.4f}" for k, v in training["final"].items()),
        "",
        f"![training curves]({CURVES})",
        "",
        "## MNIST test set",
        "",
        f"Accuracy **{metrics['accuracy']:.4f}**, cross-entropy {metrics['loss']:.4f}, "
        f"on {metrics['test_samples']:,} images.",
        "",
        "| digit | " + " | ".join(map(str, range(10))) + " |",
        "|---" * 11 + "|",
        "| accuracy | " + " | ".join(f"{a:.1%}" for a in metrics["per_class_accuracy"]) + " |",
        "",
        f"![confusion matrix]({CONFUSION})",
        "",
        "## Real-world uploads",
        "",
        *_real_world(manifest.get("real_world")),
        "",
        "## Gate",
        "",
        *_gate(manifest.get("gate")),
        "",
    ]
    return "\n".join(lines)


def summary(manifest: dict[str, Any], aliases: list[str]) -> str:
    """A few lines about a version (`mnist-models show`): what it is, how good on MNIST
    and on each kind of upload (the worst three), where its data came from, the gate."""
    recipe, metrics = manifest.get("recipe", {}), manifest.get("metrics", {})
    per_class = metrics.get("per_class_accuracy") or []
    lines = [
        f"{manifest.get('name', '?')} version {manifest.get('version', '?')}: recipe "
        f"{recipe.get('name', '?')}, created {manifest.get('created_at', '?')}, aliases: "
        f"{', '.join(aliases) or 'none'}",
    ]
    if "accuracy" in metrics:
        worst = min(range(len(per_class)), key=per_class.__getitem__) if per_class else None
        lines.append(
            f"MNIST test accuracy {metrics['accuracy']:.4f} (loss {metrics.get('loss', 0):.4f})"
            + (f"; worst digit {worst} at {per_class[worst]:.1%}" if worst is not None else "")
        )
    real_world = manifest.get("real_world")
    accuracy = kind_accuracy(real_world)
    if accuracy is not None:
        ranked = sorted(accuracy, key=accuracy.get)[:3]
        lines.append(
            f"real-world uploads {_mean(accuracy):.1%} over "
            f"{len(accuracy)} kinds ({real_world['uploads_per_kind']} each); worst: "
            + ", ".join(f"{kind} {accuracy[kind]:.1%}" for kind in ranked)
        )
    else:
        lines.append("real-world uploads: not evaluated")
    data, training = manifest.get("data", {}), manifest.get("training", {})
    if data:
        lines.append(
            f"data {str(data.get('fingerprint', '?'))[:12]}... ({data.get('train_samples', '?')} "
            f"train, {data.get('test_samples', '?')} test)"
        )
    if training:
        lines.append(
            f"trained {training.get('epochs', '?')} epochs in "
            f"{training.get('duration_seconds', 0):.1f} s"
        )
    lines.extend(f"gate: {line}" for line in _gate(manifest.get("gate")))
    lines.append(f"files: {len(manifest.get('files', {}))}, each with its sha256 (`verify`)")
    return "\n".join(lines)


def kind_accuracy(real_world: Any) -> dict[str, float] | None:
    """A manifest's `real_world.accuracy` (kind -> accuracy), or None when the version was
    not evaluated (no `real_world` object, or an empty `accuracy`)."""
    if isinstance(real_world, dict) and real_world.get("accuracy"):
        return real_world["accuracy"]
    return None


def real_world_summary(real_world: Any) -> str:
    """ "97.6% (uci 82.0%)": the mean accuracy over the kinds of upload and the worst kind
    (`mnist-models list`); "-" for a version trained without the real-world evaluation."""
    accuracy = kind_accuracy(real_world)
    if accuracy is None:
        return "-"
    worst = min(accuracy, key=accuracy.get)
    return f"{_mean(accuracy):.1%} ({worst} {accuracy[worst]:.1%})"


def _mean(accuracy: dict[str, float]) -> float:
    return sum(accuracy.values()) / len(accuracy)


def _value(value: Any) -> str:
    return "-" if value is None else str(value)


def _augmentation(augmentation: dict[str, Any]) -> str:
    if not any(augmentation.get(key) for key in DISTORTIONS):
        return "none"
    shown = {k: v for k, v in augmentation.items() if v not in (0, 0.0, None)}
    return ", ".join(f"{k} {v}" for k, v in shown.items())


def _real_world(real_world: dict[str, Any] | None) -> list[str]:
    accuracy = kind_accuracy(real_world)
    if accuracy is None:
        return ["Not evaluated (trained with `--real-world 0`)."]
    return [
        f"{real_world['uploads_per_kind']} uploads of each kind (seed {real_world['seed']}), "
        "read by the service's own decoding and preprocessing (`training/realworld/`).",
        "",
        "| kind | accuracy |",
        "|---|---|",
        *(f"| {kind} | {value:.1%} |" for kind, value in accuracy.items()),
        f"| **mean** | **{_mean(accuracy):.1%}** |",
    ]


def _gate(gate: dict[str, Any] | None) -> list[str]:
    if not gate:
        return ["not recorded"]
    compared = gate.get("compared_with")
    lines = [
        f"{gate['decision']}"
        + (f"; compared with version {compared}" if compared is not None else "")
    ]
    if gate.get("comparison") and gate["comparison"] != gate.get("promotion"):
        lines.append(f"comparison: {gate['comparison']}")
    if gate.get("promotion"):
        lines.append(f"promotion: {gate['promotion']}")
    return lines
