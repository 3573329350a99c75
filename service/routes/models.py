"""GET /v1/models and /v1/models/{version}: what the store holds and what is served."""

from __future__ import annotations

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from service.deps import RegistryDep
from service.errors import VersionUnavailable
from service.registry import ModelRegistry, version_not_found
from service.routes.errors import error_responses
from service.schemas import ModelsOverview, VersionInfo
from service.store import StoreUnreadable

router = APIRouter(prefix="/v1/models", tags=["models"])


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
