"""The uploads people really send (`../shared/cases/uploads/`), each read as a person reads
it, through HTTP, by the seed model trained on real MNIST."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO, SeedRun

CASES = (REPO / os.environ.get("CASES_DIR", "../shared/cases/uploads")).resolve()
MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".bmp": "image/bmp"}

pytestmark = pytest.mark.integration


def cases() -> list[dict[str, Any]]:
    listing = CASES / "cases.json"
    if not listing.is_file():
        return []
    return json.loads(listing.read_text())


@pytest.fixture
def client(seed_store: SeedRun, make_client: Callable[..., TestClient]) -> TestClient:
    if not (CASES / "cases.json").is_file():
        message = f"CASES_DIR={CASES} holds no cases.json"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return make_client(seed_store.root)


def test_the_cases_folder_is_there_in_ci() -> None:
    if os.environ.get("CI"):
        assert cases(), f"no cases in {CASES}"


@pytest.mark.parametrize("case", cases(), ids=lambda case: case["file"])
def test_each_case_is_read_as_a_person_reads_it(client: TestClient, case: dict[str, Any]) -> None:
    data = (CASES / case["file"]).read_bytes()
    if "send_as_body_with_content_type" in case:
        sent = [client.post(
            "/v1/predict", content=data,
            headers={"content-type": case["send_as_body_with_content_type"]},
        )]  # fmt: skip
    else:
        media = MEDIA[Path(case["file"]).suffix]
        sent = [
            client.post("/v1/predict", files={"file": (case["file"], data, media)}),
            client.post("/v1/predict", content=data, headers={"content-type": media}),
        ]
    for response in sent:
        assert response.status_code == 200, response.text
        assert response.json()["digit"] == case["expected_digit"], case["what"]
