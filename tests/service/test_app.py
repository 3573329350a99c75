"""The app factory's lifespan: what it says when there is nothing to serve."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.mark.parametrize(
    ("store", "hint"),
    [("folder", ""), ("modles", " (no such folder: a publish creates it)"),
     ("a-file", " (not a folder)")],
)  # fmt: skip
def test_nothing_to_serve_says_whether_the_store_is_a_folder(
    tmp_path: Path, store: str, hint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`mnist-serve --store modles` looked like an empty store (a newcomer)."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("")
    settings = Settings(store=tmp_path / store)
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 503
    expected = f"no model in {tmp_path / store} yet{hint}; /readyz stays 503 until one loads"
    assert expected in caplog.text
