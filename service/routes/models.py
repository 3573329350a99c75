"""GET /v1/models and /v1/models/{version}: what the store holds and what is served."""

from __future__ import annotations

from enum import StrEnum

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from service.deps import RegistryDep
from service.errors import CardNotFound, VersionUnavailable
from service.registry import ModelRegistry, version_not_found
from service.routes.errors import error_responses
from service.schemas import ModelsOverview, VersionInfo
from service.store import StoreUnreadable, VersionCorrupt

router = APIRouter(prefix="/v1/models", tags=["models"])
CARD = "model-card.md"  # written by mnist-train beside the model (training/card.py)
MAX_CARD_BYTES = 1 << 20  # mnist-train's cards are about 3 KB
MARKDOWN = "text/markdown; charset=utf-8"


class CardPicture(StrEnum):
    """The pictures a model card shows, files of the version beside it (training/card.py)."""

    training_curves = "training-curves.png"
    confusion_matrix = "confusion-matrix.png"


def _overview(registry: ModelRegistry) -> ModelsOverview:
    """StoreUnreadable (503) when the store's folder or aliases.json cannot be read: an
    empty answer would say the store is empty."""
    store = registry.store
    aliases = store.aliases()
    current = registry.current
    return ModelsOverview(
        model=store.name,
        alias=registry.alias,
        served_version=current.version if current else None,
        versions=store.versions(),
        aliases=aliases,
    )


def _version_info(registry: ModelRegistry, version: int) -> VersionInfo:
    overview = _overview(registry)
    if version not in overview.versions:
        raise version_not_found(registry.store, version)
    try:
        manifest = registry.store.manifest(version)
    except StoreUnreadable as exc:
        raise VersionUnavailable(f"{registry.store.name} version {version}: {exc}") from exc
    return VersionInfo(
        version=version,
        aliases=sorted(a for a, v in overview.aliases.items() if v == version),
        served=version == overview.served_version,
        manifest=manifest,
    )


@router.get("", responses=error_responses())
async def list_models(registry: RegistryDep) -> ModelsOverview:
    """Versions in the store, its aliases, and the version being served."""
    return await run_in_threadpool(_overview, registry)


@router.get("/{version}", responses=error_responses(404, 409))
async def show_model(registry: RegistryDep, version: int = Path(ge=1)) -> VersionInfo:
    """One version: its aliases, whether it is served, and its manifest."""
    return await run_in_threadpool(_version_info, registry, version)


def _card_file(registry: ModelRegistry, version: int, name: str) -> bytes:
    """A file of the version's model card (`model-card.md` or one of its pictures), at most
    MAX_CARD_BYTES, checked against its manifest's sha256 (`ModelStore.read_file`)."""
    store = registry.store
    if version not in store.versions():
        raise version_not_found(store, version)
    try:
        return store.read_file(version, name, MAX_CARD_BYTES)
    except FileNotFoundError as exc:
        raise CardNotFound(
            f"{store.name} version {version} has no {name} (published before mnist-train "
            f"wrote model cards); GET /v1/models/{version} shows its manifest"
        ) from exc
    except VersionCorrupt as exc:
        raise VersionUnavailable(f"{store.name} version {version}: {exc}") from exc


@router.get(
    "/{version}/card",
    response_class=Response,
    responses={
        200: {"content": {MARKDOWN: {"schema": {"type": "string"}}}, "description": "Markdown"},
        **error_responses(404, 409),
    },
)
async def model_card(registry: RegistryDep, version: int = Path(ge=1)) -> Response:
    """One version's model card (Markdown): its data, recipe, training curves, confusion
    matrix, accuracy per digit and per kind of real-world upload, and the gate's decision.
    Its pictures are files of the version folder beside it."""
    data = await run_in_threadpool(_card_file, registry, version, CARD)
    return Response(data.decode("utf-8", errors="replace"), media_type=MARKDOWN)


@router.get(
    "/{version}/{picture}",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
              "description": "PNG"},
        **error_responses(404, 409),
    },
)  # fmt: skip
async def model_card_picture(
    registry: RegistryDep, picture: CardPicture, version: int = Path(ge=1)
) -> Response:
    """A picture of the version's model card: `training-curves.png` or
    `confusion-matrix.png` (the card links them by these relative names)."""
    data = await run_in_threadpool(_card_file, registry, version, picture.value)
    return Response(data, media_type="image/png")
