"""GET /: the demo page, its files, and a real browser using it against the real service.

The browser test drives Debian's Chromium (/usr/bin/chromium, installed by .ci/run; or the
browser $CHROMIUM names) through Playwright; no browser is ever downloaded. Screenshots go
to $ARTIFACTS_DIR (default test-artifacts/), which CI keeps; the ones in docs/screenshots/
are copies of them.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import SeedRun
from tests.servers import serve
from tests.tools import require_program
from tests.uploads import png
from training.data import load_idx_dir
from training.realworld.uploads import clean_photo
from training.store import Store

WEB = Path(__file__).resolve().parents[2] / "service" / "web"
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", "test-artifacts"))


def test_page_is_served_with_its_controls(
    tiny_store: Store, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(tiny_store)
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for control in ('id="pad"', 'id="predict"', 'id="clear"', 'type="file"', 'id="bars"'):
        assert control in html
    assert '<label class="file-button" for="file">' in html  # the picker has a label
    assert 'name="viewport"' in html
    for asset in ("/static/app.js", "/static/style.css"):
        got = client.get(asset)
        assert got.status_code == 200 and got.text == (WEB / asset.split("/")[-1]).read_text()
    assert (
        client.get("/static/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert client.get("/static/missing.js").status_code == 404


def test_page_needs_nothing_from_elsewhere() -> None:
    """Works offline: every URL the page's files mention is on this server."""
    for path in WEB.iterdir():
        if path.suffix == ".ico":
            continue  # an image
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert "/v1/predict" in text or path.suffix != ".js"  # the public API, nothing else


def test_page_is_not_in_the_api_schema(
    tiny_store: Store, make_client: Callable[..., TestClient]
) -> None:
    paths = make_client(tiny_store).get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/v1/predict" in paths


# --- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = os.environ.get("CHROMIUM") or require_program("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield browser
        browser.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("viewport", "name"),
    [({"width": 1280, "height": 800}, "desktop"), ({"width": 390, "height": 844}, "phone")],
)
def test_draw_upload_and_errors_in_a_real_browser(
    browser: Any, seed_store: SeedRun, mnist_dir: Path, tmp_path: Path, viewport: dict, name: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seven = load_idx_dir(mnist_dir).x_test[0]  # the first MNIST test digit is a 7
    with serve(seed_store.root, tmp_path) as server:
        context = browser.new_context(viewport=viewport, has_touch=name == "phone")
        page = context.new_page()
        page.goto(server.url + "/")
        assert page.title() == "Digit classifier"

        # Every control is reachable with the keyboard.
        focused = []
        for _ in range(8):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id"))
        assert {"predict", "clear", "file"} <= set(focused)

        # Draw a vertical stroke: clearly a 1.
        box = page.locator("#pad").bounding_box()
        assert box is not None and abs(box["width"] - box["height"]) < 2  # square
        x = box["x"] + box["width"] / 2
        page.mouse.move(x, box["y"] + box["height"] * 0.15)
        page.mouse.down()
        for step in range(1, 21):
            page.mouse.move(x + step * 0.2, box["y"] + box["height"] * (0.15 + 0.035 * step))
        page.mouse.up()
        page.get_by_role("button", name="Predict").click()
        page.locator("#result").wait_for(state="visible")
        assert page.locator("#digit").inner_text() == "1"
        probabilities = page.locator("#bars li").evaluate_all(
            "items => items.map(li => Number(li.dataset.probability))"
        )
        heights = page.locator("#bars .bar").evaluate_all(
            "bars => bars.map(b => b.getBoundingClientRect().height)"
        )
        assert len(probabilities) == 10 and max(range(10), key=probabilities.__getitem__) == 1
        assert max(range(10), key=heights.__getitem__) == 1  # the tallest bar is the 1's
        assert re.fullmatch(r"mnist, version 1", page.locator("#model").inner_text())
        assert re.fullmatch(r"\d+ ms", page.locator("#latency").inner_text())
        page.screenshot(path=ARTIFACTS / f"page-{name}-drawn-1.png", full_page=True)

        # Upload an MNIST test PNG of another digit.
        page.locator("#file").set_input_files(
            {"name": "seven.png", "mimeType": "image/png", "buffer": png(seven)}
        )
        page.locator("#digit").filter(has_text="7").wait_for()
        assert page.locator("#error").is_hidden()
        page.screenshot(path=ARTIFACTS / f"page-{name}-upload-7.png", full_page=True)

        # Upload a text file: the API's message is shown in words.
        page.locator("#file").set_input_files(
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a digit\n"}
        )
        error = page.get_by_role("alert")
        error.wait_for(state="visible")
        assert "not an image" in error.inner_text() and "notes.txt" in error.inner_text()
        assert page.locator("#result").is_hidden()
        page.screenshot(path=ARTIFACTS / f"page-{name}-error.png", full_page=True)

        # Clear empties the pad; Predict on an empty pad says so without calling the API.
        page.get_by_role("button", name="Clear").click()
        page.get_by_role("button", name="Predict").click()
        assert "empty" in page.get_by_role("alert").inner_text()
        context.close()


# A file dropped on the drawing area, as a browser delivers it: a DataTransfer holding a File.
DROP_FILE = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  return transfer;
}"""


@pytest.mark.integration
def test_model_view_of_a_dropped_photo_in_a_real_browser(
    browser: Any, seed_store: SeedRun, mnist_dir: Path, tmp_path: Path
) -> None:
    """A phone photo dropped on the page: the 28x28 sample the model saw is shown, and the
    box it was cut from is outlined over the photo on the canvas."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seven = load_idx_dir(mnist_dir).x_test[0]  # the first MNIST test digit is a 7
    photo = clean_photo(seven, np.random.default_rng(7))  # dark ink on noisy paper, a JPEG
    with Image.open(io.BytesIO(photo)) as image:
        assert image.format == "JPEG" and min(image.size) >= 260
        photo_width, photo_height = image.size
    with serve(seed_store.root, tmp_path) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(server.url + "/")
        assert page.locator("#seen").is_hidden() and page.locator("#crop-box").is_hidden()

        transfer = page.evaluate_handle(
            DROP_FILE, ["photo.jpg", "image/jpeg", base64.b64encode(photo).decode()]
        )
        with page.expect_response(lambda r: "/v1/predict" in r.url) as answered:
            page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
        response = answered.value
        assert response.url.endswith("/v1/predict?explain=true") and response.ok
        answer = response.json()
        explanation = answer["explanation"]

        # The prediction is shown.
        page.locator("#result").wait_for(state="visible")
        assert page.locator("#digit").inner_text() == str(answer["digit"]) == "7"
        assert page.get_by_role("status").inner_text() == "The model reads a 7."
        assert page.locator("#error").is_hidden()

        # What the model saw: the service's 28x28 PNG, drawn large and pixelated, with words.
        seen = page.get_by_role("figure", name="What the model saw")
        seen.wait_for(state="visible")
        sample = page.locator("#sample")
        src = sample.get_attribute("src")
        assert src is not None and src.startswith("data:image/png;base64,")
        assert src == "data:image/png;base64," + explanation["sample_png"]
        page.wait_for_function("document.getElementById('sample').complete")
        assert sample.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [28, 28]
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as png_file:
            assert png_file.format == "PNG" and png_file.size == (28, 28)
            pixels = np.asarray(png_file.convert("L"))
        assert pixels[0].max() < 64 and pixels.max() > 200  # white ink on black
        assert "28 by 28" in (sample.get_attribute("alt") or "")
        shown = sample.bounding_box()
        assert shown is not None and shown["width"] >= 100 and shown["height"] >= 100
        assert sample.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"

        # The crop box, mapped from photo pixels onto the canvas as the photo was drawn there.
        box = explanation["box"]
        assert 0 <= box["left"] and box["left"] + box["width"] <= photo_width
        assert 0 <= box["top"] and box["top"] + box["height"] <= photo_height
        outline = page.locator("#crop-box")
        outline.wait_for(state="visible")
        assert outline.get_attribute("data-box") == ",".join(
            str(box[k]) for k in ("left", "top", "width", "height")
        )
        canvas = page.locator("#pad").bounding_box()
        drawn = outline.bounding_box()
        assert canvas is not None and drawn is not None
        css = (canvas["width"] - 2) / 280  # CSS pixels per canvas pixel, inside the 1px border
        scale = min(280 / photo_width, 280 / photo_height)  # as useFile draws the photo
        expected = {
            "x": canvas["x"] + 1 + css * ((280 - photo_width * scale) / 2 + box["left"] * scale),
            "y": canvas["y"] + 1 + css * ((280 - photo_height * scale) / 2 + box["top"] * scale),
            "width": css * box["width"] * scale,
            "height": css * box["height"] * scale,
        }
        for key, value in expected.items():
            assert abs(drawn[key] - value) < 1.5, (key, drawn, expected)

        page.screenshot(path=ARTIFACTS / "page-model-view.png", full_page=True)

        # Drawing on the photo drops the outline: it belonged to the picture as sent.
        x, y = canvas["x"] + canvas["width"] * 0.1, canvas["y"] + canvas["height"] * 0.1
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 5, y + 5)
        page.mouse.up()
        assert outline.is_hidden() and seen.is_visible()

        # Clear hides the model view; so does an error.
        page.get_by_role("button", name="Clear").click()
        assert seen.is_hidden() and outline.is_hidden()
        page.locator("#file").set_input_files(
            {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": photo}
        )
        outline.wait_for(state="visible")
        assert seen.is_visible()
        page.locator("#file").set_input_files(
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a digit\n"}
        )
        page.get_by_role("alert").wait_for(state="visible")
        assert seen.is_hidden() and outline.is_hidden()
        assert page.locator("#sample").get_attribute("src") is None
        context.close()
