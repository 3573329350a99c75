"""GET /: the demo page (draw or upload a digit), and the files it loads from /static.

Plain files from `service/web`: no build step, nothing fetched from elsewhere, so the page
works offline. It calls `POST /v1/predict` like any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent.parent / "web"

router = APIRouter(tags=["page"])


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The page itself."""
    return FileResponse(WEB / "index.html", media_type="text/html")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """The page's icon, and the docs' (browsers ask for it at this path)."""
    return FileResponse(WEB / "favicon.ico", media_type="image/vnd.microsoft.icon")


static = StaticFiles(directory=WEB)
