"""The HTTP API through FastAPI's TestClient: answers, errors and statuses."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.keras_files import publish_beside, publish_layers, random_layers
from tests.uploads import digit_png, png, rgba_strokes
from training.store import Store

MakeClient = Callable[..., TestClient]
PNG = {"content-type": "image/png"}


@pytest.fixture
def client(tiny_store: Store, make_client: MakeClient) -> TestClient:
    return make_client(tiny_store)


def test_predict_multipart(client: TestClient) -> None:
    response = client.post("/v1/predict", files={"file": ("one.png", digit_png(), "image/png")})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "mnist" and body["version"] == 1
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert body["digit"] == int(np.argmax(body["probabilities"]))
    assert body["confidence"] == max(body["probabilities"])


def test_predict_raw_body_gives_the_same_answer(client: TestClient) -> None:
    multipart = client.post("/v1/predict", files={"file": ("a.png", digit_png())}).json()
    raw = client.post("/v1/predict", content=digit_png(), headers={"content-type": "image/png"})
    assert raw.status_code == 200
    assert raw.json() == multipart


def test_png_labelled_jpeg_is_read_by_its_bytes(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", content=digit_png(), headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 200


def test_missing_field_is_422(client: TestClient) -> None:
    response = client.post("/v1/predict", files={"image": ("a.png", digit_png())})
    assert response.status_code == 422
    assert response.json() == {
        "error": "missing_image",
        "detail": "multipart field 'file' is missing (fields sent: 'image')",
    }


def test_text_value_instead_of_a_file_is_422(client: TestClient) -> None:
    files = {"other": ("a.png", digit_png())}
    response = client.post("/v1/predict", data={"file": "not a file"}, files=files)
    assert response.status_code == 422
    assert response.json()["detail"] == "multipart field 'file' must be a file upload, not text"


def test_form_urlencoded_is_415(client: TestClient) -> None:
    assert client.post("/v1/predict", data={"file": "x"}).status_code == 415


def test_text_body_is_415(client: TestClient) -> None:
    response = client.post("/v1/predict", content=b"hi", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert "'text/plain', not an image" in response.json()["detail"]


def test_no_content_type_is_415(client: TestClient) -> None:
    response = client.post("/v1/predict", content=b"")
    assert response.status_code == 415
    assert "no Content-Type" in response.json()["detail"]


def test_svg_part_is_415(client: TestClient) -> None:
    files = {"file": ("a.svg", b"<svg/>", "image/svg+xml")}
    assert client.post("/v1/predict", files=files).status_code == 415


def test_text_labelled_png_is_400(client: TestClient) -> None:
    response = client.post("/v1/predict", content=b"hello", headers={"content-type": "image/png"})
    assert response.status_code == 400
    assert response.json()["error"] == "undecodable_image"


def test_tiff_labelled_png_is_415(client: TestClient) -> None:
    out = io.BytesIO()
    Image.new("L", (28, 28), 255).save(out, format="TIFF")
    response = client.post(
        "/v1/predict", content=out.getvalue(), headers={"content-type": "image/png"}
    )
    assert response.status_code == 415
    assert response.json()["detail"].startswith("TIFF images are not supported")


def test_too_many_pixels_is_413(tiny_store: Store, make_client: MakeClient) -> None:
    client = make_client(tiny_store, max_pixels=10_000)
    response = client.post(
        "/v1/predict",
        content=png(np.zeros((200, 200), np.uint8)),
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 413
    assert "200x200 = 40000 pixels, over the limit of 10000" in response.json()["detail"]


def test_body_over_the_limit_is_413_raw_multipart_and_chunked(
    tiny_store: Store, make_client: MakeClient
) -> None:
    client = make_client(tiny_store, max_body_bytes=10_000)
    big = b"\x89PNG" + b"\0" * 20_000
    expected = "the request body is over the limit of 10000 bytes"
    raw = client.post("/v1/predict", content=big, headers={"content-type": "image/png"})
    multipart = client.post("/v1/predict", files={"file": ("a.png", big)})

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"\0" * 1000

    chunked = client.post("/v1/predict", content=chunks(), headers={"content-type": "image/png"})
    for response in (raw, multipart, chunked):
        assert response.status_code == 413
        assert response.json() == {"error": "payload_too_large", "detail": expected}


def test_blank_canvas_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", files={"file": ("a.png", png(np.zeros((50, 50), np.uint8)))}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "blank_image"


def test_pinned_version(tiny_store: Store, make_client: MakeClient) -> None:
    publish_layers(tiny_store, random_layers(seed=9))
    client = make_client(tiny_store)
    served = client.post("/v1/predict", files={"file": ("a.png", digit_png())}).json()
    pinned = client.post("/v1/predict?version=1", files={"file": ("a.png", digit_png())}).json()
    assert served["version"] == 2 and pinned["version"] == 1
    assert served["probabilities"] != pinned["probabilities"]


def test_unknown_version_is_404(client: TestClient) -> None:
    response = client.post("/v1/predict?version=7", files={"file": ("a.png", digit_png())})
    assert response.status_code == 404
    assert response.json() == {
        "error": "version_not_found",
        "detail": "mnist has no version 7 (versions: 1)",
    }


def test_version_must_be_positive(client: TestClient) -> None:
    response = client.post("/v1/predict?version=0", files={"file": ("a.png", digit_png())})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_batch_keeps_order_and_per_file_errors(client: TestClient) -> None:
    files = [
        ("files", ("a.png", digit_png(), "image/png")),
        ("files", ("b.txt", b"not an image", "image/png")),
        ("files", ("c.png", digit_png(), "image/png")),
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["a.png", "b.txt", "c.png"]
    assert results[1]["error"] == "undecodable_image" and results[1]["prediction"] is None
    assert results[0]["prediction"] == results[2]["prediction"]


def test_batch_answers_as_single_requests_do(client: TestClient) -> None:
    """Images of several sizes, kinds and a blank one: preprocessed in stacks, answered
    each as /v1/predict answers it alone."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    uploads = {
        "small.png": png(digit),
        "blank.png": png(np.full((28, 28), 120, np.uint8)),
        "big.png": png(np.kron(digit, np.ones((4, 3), np.uint8))),
        "paper.png": png(255 - np.roll(digit, 3, axis=1)),
        "canvas.png": rgba_strokes(digit, np.random.default_rng(1)),
        "big-paper.png": png(np.kron(255 - digit, np.ones((4, 3), np.uint8))),
    }
    files = [("files", (name, data, "image/png")) for name, data in uploads.items()]
    results = client.post("/v1/predict/batch", files=files).json()["results"]
    assert [r["filename"] for r in results] == list(uploads)
    for result, data in zip(results, uploads.values(), strict=True):
        alone = client.post("/v1/predict", content=data, headers={"content-type": "image/png"})
        if result["error"] is None:
            assert result["prediction"]["probabilities"] == pytest.approx(
                alone.json()["probabilities"], abs=2e-6
            )
        else:
            assert (result["error"], alone.status_code) == ("blank_image", 422)
            assert result["detail"] == alone.json()["detail"]
    assert [r["error"] for r in results] == [None, "blank_image", None, None, None, None]


def test_a_text_file_is_refused_alike_alone_and_in_a_batch(client: TestClient) -> None:
    alone = client.post("/v1/predict", files={"file": ("notes.txt", b"hi", "text/plain")})
    assert alone.status_code == 415
    files = [
        ("files", ("a.png", digit_png(), "image/png")),
        ("files", ("notes.txt", b"hi", "text/plain")),
        ("files", ("b.svg", b"<svg/>", "image/svg+xml")),
    ]
    results = client.post("/v1/predict/batch", files=files).json()["results"]
    assert results[0]["error"] is None and results[0]["prediction"]["digit"] in range(10)
    assert results[1]["error"] == alone.json()["error"] == "unsupported_media_type"
    assert results[1]["detail"] == alone.json()["detail"].replace("'file'", "'files'")
    assert results[1]["detail"] == (
        "the part 'files' (notes.txt) is 'text/plain', not an image: send PNG, JPEG, GIF, "
        "BMP or WebP"
    )
    assert results[2]["error"] == "unsupported_media_type"
    assert results[2]["detail"] == "the part 'files' (b.svg) is image/svg+xml: send PNG, " + (
        "JPEG, GIF, BMP or WebP"
    )


def test_a_batch_of_refused_files_only_answers_each(client: TestClient) -> None:
    files = [("files", (f"{n}.txt", b"hi", "text/plain")) for n in range(2)]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200
    assert [r["error"] for r in response.json()["results"]] == ["unsupported_media_type"] * 2


def test_no_content_type_is_worded_alike_by_both_routes(client: TestClient) -> None:
    alone = client.post("/v1/predict", content=b"")
    batch = client.post("/v1/predict/batch", content=b"")
    assert alone.status_code == batch.status_code == 415
    assert alone.json()["error"] == batch.json()["error"] == "unsupported_media_type"
    assert alone.json()["detail"].startswith("the request has no Content-Type: send ")
    assert batch.json()["detail"] == (
        "the request has no Content-Type: send multipart/form-data with one field 'files' per image"
    )
    raw = client.post(
        "/v1/predict/batch", content=digit_png(), headers={"content-type": "image/png"}
    )
    assert raw.status_code == 415
    assert raw.json()["detail"] == (
        "the request body is 'image/png': send multipart/form-data with one field 'files' per image"
    )


def test_batch_over_the_limit_is_413(tiny_store: Store, make_client: MakeClient) -> None:
    client = make_client(tiny_store, max_batch=2)
    files = [("files", (f"{i}.png", digit_png(), "image/png")) for i in range(3)]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 413
    assert response.json()["detail"] == "3 images sent; a batch holds at most 2"


def test_batch_without_files_is_422(client: TestClient) -> None:
    response = client.post("/v1/predict/batch", files={"file": ("a.png", digit_png())})
    assert response.status_code == 422


def test_models_endpoints(tiny_store: Store, make_client: MakeClient) -> None:
    publish_layers(tiny_store, random_layers(seed=2), accuracy=0.95)
    tiny_store.set_alias("production", 1)
    client = make_client(tiny_store)
    overview = client.get("/v1/models").json()
    assert overview == {
        "model": "mnist",
        "alias": "production",
        "served_version": 1,
        "versions": [1, 2],
        "aliases": {"production": 1},
    }
    two = client.get("/v1/models/2").json()
    assert two["served"] is False and two["aliases"] == []
    assert two["manifest"]["metrics"]["accuracy"] == 0.95
    assert client.get("/v1/models/9").status_code == 404


def test_model_card_is_served_as_markdown(tiny_store: Store, make_client: MakeClient) -> None:
    publish_beside(  # a version with a card, as mnist-train writes
        tiny_store,
        {"model-card.md": b"# Model card: mnist, recipe `t`\n",
         "confusion-matrix.png": png(np.zeros((4, 4), np.uint8))},
    )  # fmt: skip
    client = make_client(tiny_store)
    card = client.get("/v1/models/2/card")
    assert card.status_code == 200 and card.text == "# Model card: mnist, recipe `t`\n"
    assert card.headers["content-type"] == "text/markdown; charset=utf-8"
    picture = client.get("/v1/models/2/confusion-matrix.png")  # as the card links it
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG")
    without = client.get("/v1/models/1/card")
    assert without.status_code == 404 and without.json()["error"] == "card_not_found"
    assert "has no model-card.md" in without.json()["detail"]
    assert client.get("/v1/models/9/card").json()["error"] == "version_not_found"
    assert client.get("/v1/models/2/training-curves.png").json()["error"] == "card_not_found"
    assert client.get("/v1/models/2/model.keras").status_code == 422  # only the pictures
    (tiny_store.dir / "2" / "model-card.md").write_text("# forged\n")  # not what was published
    assert client.get("/v1/models/2/card").status_code == 409


def test_a_card_that_is_a_link_is_never_followed(
    tiny_store: Store, make_client: MakeClient, tmp_path
) -> None:
    """A link listed with its target's sha256 (as a writer swapping files after the checks
    would leave it): the card is read from a descriptor opened without following links."""
    secret = tmp_path / "environ"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    publish_beside(tiny_store, {"model-card.md": secret})
    answer = make_client(tiny_store).get("/v1/models/2/card")
    assert answer.status_code == 409 and "hunter2" not in answer.text
    assert "model-card.md: Too many levels of symbolic links" in answer.json()["detail"]


def test_a_card_that_is_huge_or_not_utf8_is_no_crash(
    tiny_store: Store, make_client: MakeClient
) -> None:
    for card in (b"\xff\xfe card \x80", b"#" * (2 << 20)):
        publish_beside(tiny_store, {"model-card.md": card})
    client = make_client(tiny_store)
    odd = client.get("/v1/models/2/card")
    assert odd.status_code == 200 and odd.text == "\ufffd\ufffd card \ufffd"
    huge = client.get("/v1/models/3/card")
    assert huge.status_code == 409 and "over 1048576 bytes" in huge.json()["detail"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "model": "mnist",
        "version": 1,
        "detail": None,
    }
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["version"] == 1
    assert client.head("/healthz").status_code == 200  # load balancers probe with HEAD
    assert client.head("/readyz").status_code == 200


def test_docs_work_offline_and_the_favicon_is_served(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), html
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and Image.open(io.BytesIO(icon.content)).format == "ICO"


def test_empty_store_is_alive_not_ready_and_predict_is_503(
    tmp_path, make_client: MakeClient
) -> None:
    client = make_client(tmp_path / "empty")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    response = client.post("/v1/predict", files={"file": ("a.png", digit_png())})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "model_not_ready"


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "no route /nope: see /docs for the API",
    }


def test_openapi_documents_both_request_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/png", "image/jpeg"} <= set(content)
    # The two plain ASGI endpoints are described as FastAPI routes would be.
    for path, answer in (("/v1/predict", "Prediction"), ("/v1/predict/batch", "BatchPrediction")):
        operation = spec["paths"][path]["post"]
        assert [p["name"] for p in operation["parameters"]] == ["version", "explain"]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{answer}"}
        assert operation["responses"]["413"]["description"] == "too many bytes, pixels or images"
    assert client.get("/docs").status_code == 200


def test_predict_takes_only_post(client: TestClient) -> None:
    response = client.get("/v1/predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {
        "error": "method_not_allowed",
        "detail": "/v1/predict takes POST, not GET",
    }


@pytest.mark.parametrize(
    "query",
    ["version=abc", "version=-1", "version=1.5", "version=0x1", "version=", "version=%EF%BC%91"],
)
def test_a_version_that_is_not_a_positive_integer_is_422(client: TestClient, query: str) -> None:
    response = client.post(f"/v1/predict?{query}", files={"file": ("a.png", digit_png())})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"].startswith("query.version: Input should be")


def test_other_query_parameters_are_ignored(client: TestClient) -> None:
    response = client.post("/v1/predict?debug=1", files={"file": ("a.png", digit_png())})
    assert response.status_code == 200 and response.json()["version"] == 1


def test_a_repeated_query_parameter_counts_by_its_last_value(client: TestClient) -> None:
    """As FastAPI reads a scalar parameter: the first, invalid, value is not looked at."""
    response = client.post(
        "/v1/predict?version=abc&version=1", files={"file": ("a.png", digit_png())}
    )
    assert response.status_code == 200 and response.json()["version"] == 1


def test_the_batch_route_validates_its_query_the_same_way(client: TestClient) -> None:
    response = client.post("/v1/predict/batch?version=0", files=[("files", ("a.png", digit_png()))])
    assert response.status_code == 422
    assert response.json()["detail"] == "query.version: Input should be greater than or equal to 1"


def a_photo() -> tuple[bytes, tuple[int, int, int, int]]:
    """A 400x300 JPEG of a dark '1' on grey-white paper, and the '1''s box (left, top,
    width, height)."""
    rng = np.random.default_rng(4)
    paper = 215 + rng.normal(0, 3, (300, 400))
    paper[60:220, 250:266] = 35
    out = io.BytesIO()
    Image.fromarray(paper.clip(0, 255).astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue(), (250, 60, 16, 160)


def test_explain_shows_the_sample_the_model_saw_and_where(client: TestClient) -> None:
    photo, (left, top, width, height) = a_photo()
    plain = client.post("/v1/predict", files={"file": ("p.jpg", photo)}).json()
    assert "explanation" not in plain
    response = client.post("/v1/predict?explain=true", files={"file": ("p.jpg", photo)})
    assert response.status_code == 200
    body = response.json()
    assert {k: v for k, v in body.items() if k != "explanation"} == plain
    box = body["explanation"]["box"]
    assert box == pytest.approx({"left": left, "top": top, "width": width, "height": height}, abs=3)
    sample = Image.open(io.BytesIO(base64.b64decode(body["explanation"]["sample_png"])))
    assert sample.size == (28, 28) and sample.mode == "L"
    pixels = np.asarray(sample)
    assert np.count_nonzero(pixels.max(axis=1) > 128) == 20  # the '1', fitted into 20 px
    assert pixels[:, :5].max() == 0 and pixels[:, -5:].max() == 0  # white ink on black


def test_explain_in_a_batch_explains_each_file(client: TestClient) -> None:
    photo, _ = a_photo()
    files = [("files", ("a.png", digit_png())), ("files", ("p.jpg", photo))]
    response = client.post("/v1/predict/batch?explain=1", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["prediction"]["explanation"]["box"]["height"] for r in results] == [16, 160]
    plain = client.post("/v1/predict/batch", files=files).json()["results"]
    assert all("explanation" not in r["prediction"] for r in plain)


@pytest.mark.parametrize("value", ["maybe", ""])
def test_explain_must_be_true_or_false(client: TestClient, value: str) -> None:
    response = client.post(f"/v1/predict?explain={value}", files={"file": ("a.png", digit_png())})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_request",
        "detail": "query.explain: Input should be a valid boolean, unable to interpret input",
    }


def test_a_dim_sheet_without_a_digit_is_422_not_a_guess(client: TestClient) -> None:
    rng = np.random.default_rng(9)
    sheet = 110 + rng.normal(0, 4, (240, 320))  # mid-grey paper, nothing written
    out = io.BytesIO()
    Image.fromarray(sheet.clip(0, 255).astype(np.uint8)).save(out, format="JPEG")
    response = client.post("/v1/predict", files={"file": ("dim.jpg", out.getvalue())})
    assert response.status_code == 422
    assert response.json()["error"] == "blank_image"
    assert response.json()["detail"].startswith("no digit found")


def _store_folder_unreadable(store: Store) -> None:
    """Make the model folder unreadable even to root: a symlink to itself (ELOOP)."""
    store.dir.rename(store.dir.with_name("moved"))
    store.dir.symlink_to(store.dir.name)


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/1", "/v1/predict?version=2"])
def test_an_unreadable_store_is_503_not_an_empty_answer(
    tiny_store: Store, make_client: MakeClient, path: str
) -> None:
    client = make_client(tiny_store)
    _store_folder_unreadable(tiny_store)
    response = (
        client.post(path, content=digit_png(), headers=PNG)
        if "predict" in path
        else client.get(path)
    )
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "store_unavailable"
    assert "Too many levels of symbolic links" in body["detail"]
    # The served version keeps answering from memory.
    assert client.post("/v1/predict", content=digit_png(), headers=PNG).status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("aliases", ['{"production": 1e400}', "[" * 100_000 + "]" * 100_000])
def test_a_damaged_aliases_file_is_503_in_the_json_error_shape(
    tiny_store: Store, make_client: MakeClient, aliases: str
) -> None:
    client = make_client(tiny_store)
    (tiny_store.dir / "aliases.json").write_text(aliases)
    for path in ("/v1/models", "/v1/models/1"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json()["error"] == "store_unavailable"
        assert "aliases.json" in response.json()["detail"]


def test_a_version_with_an_unreadable_file_is_409(
    tiny_store: Store, make_client: MakeClient
) -> None:
    publish_layers(tiny_store, random_layers(seed=2))
    client = make_client(tiny_store)  # serves version 2
    manifest = tiny_store.dir / "1" / "manifest.json"
    manifest.unlink()
    manifest.symlink_to("manifest.json")  # unreadable: ELOOP
    model = tiny_store.dir / "1" / "model.keras"
    model.unlink()
    model.symlink_to("model.keras")
    for response in (
        client.get("/v1/models/1"),
        client.post("/v1/predict?version=1", content=digit_png(), headers=PNG),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "version_unavailable"
