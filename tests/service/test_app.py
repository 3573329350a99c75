"""The app factory's lifespan: what it says when there is nothing to serve."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.mark.parametrize("exists", [True, False])
def test_nothing_to_serve_says_whether_the_store_folder_exists(
    tmp_path: Path, exists: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """`mnist-serve --store modles` looked like an empty store (a newcomer)."""
    store = tmp_path / ("models" if exists else "modles")
    if exists:
        store.mkdir()
    with caplog.at_level(logging.WARNING), TestClient(create_app(Settings(store=store))) as client:
        assert client.get("/readyz").status_code == 503
    hint = " (no such folder: a publish creates it)" if not exists else ""
    assert f"no model in {store} yet{hint}; /readyz stays 503 until one loads" in caplog.text
