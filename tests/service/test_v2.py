"""The Open Inference Protocol (/v2) on the real server, through the real `tritonclient`
(binary bodies without a Content-Type, JSON ones, binary outputs), answers checked against
/v1/predict's and the digits' labels; and its error shape through the app."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from tritonclient.utils import InferenceServerException

from service.oip import model_metadata
from tests.conftest import SeedRun
from tests.keras_files import publish_layers, random_layers
from tests.servers import Server, serve
from tests.uploads import digit_png, png
from training.data import load_idx_dir
from training.store import Store

COUNT = 8  # MNIST test digits sent in each request

integration = pytest.mark.integration


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first MNIST test digits (uint8, N x 28 x 28) and their labels."""
    data = load_idx_dir(mnist_dir)
    return data.x_test[:COUNT], data.y_test[:COUNT]


@pytest.fixture(scope="module")
def server(seed_store: SeedRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service on a copy of the trained store (production: version 1) with a random
    version 2 beside it, for pinned-version requests."""
    folder = tmp_path_factory.mktemp("v2")
    shutil.copytree(seed_store.root, folder / "store")
    publish_layers(Store(folder / "store"), random_layers(seed=5))
    with serve(folder / "store", folder) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(server.url.removeprefix("http://")) as running:
        yield running


@pytest.fixture(scope="module")
def v1_answers(server: Server, digits: tuple[np.ndarray, np.ndarray]) -> list[dict]:
    """/v1/predict's answers for the PNGs of the digits."""
    with httpx.Client(base_url=server.url) as http:
        return [
            http.post("/v1/predict", content=png(d), headers={"content-type": "image/png"}).json()
            for d in digits[0]
        ]


def tensor_of(kind: str, images: np.ndarray, binary: bool) -> triton.InferInput:
    """The digits as one input of the given kind, as a client would send them."""
    if kind == "pixels":
        array, datatype = (images.reshape(-1, 784) / 255).astype(np.float32), "FP32"
    elif kind == "image":
        array, datatype = images, "UINT8"
    else:  # encoded PNGs: raw bytes in binary mode, base64 strings in JSON
        files = [png(image) for image in images]
        array = np.array(files if binary else [base64.b64encode(f) for f in files], dtype=object)
        datatype = "BYTES"
    tensor = triton.InferInput(kind, list(array.shape), datatype)
    return tensor.set_data_from_numpy(array, binary_data=binary)


@integration
def test_health_and_readiness_as_tritonclient_sees_them(
    client: triton.InferenceServerClient,
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mnist") and client.is_model_ready("mnist", "2")
    assert not client.is_model_ready("fashion")
    assert not client.is_model_ready("mnist", "9")


@integration
def test_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.get_server_metadata() == {
        "name": "mnist-serving",
        "version": "1",
        "extensions": ["binary_tensor_data"],
    }


@integration
def test_model_and_version_metadata(client: triton.InferenceServerClient) -> None:
    """The codec's metadata (its content pinned in test_oip.py), with the store's versions."""
    assert client.get_model_metadata("mnist") == model_metadata("mnist", [1, 2])
    assert client.get_model_metadata("mnist", "2") == model_metadata("mnist", [2])


@integration
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("kind", ["pixels", "image", "image_file"])
def test_each_input_kind_answers_as_v1_predict_does(
    client: triton.InferenceServerClient,
    digits: tuple[np.ndarray, np.ndarray],
    v1_answers: list[dict],
    kind: str,
    binary: bool,
) -> None:
    """Files take /v1's pipeline: the same probabilities (to its 6 decimals). Samples skip
    its re-centring of MNIST digits (a pixel at most): the same digits."""
    images, labels = digits
    result = client.infer("mnist", [tensor_of(kind, images, binary)])
    found, probabilities = result.as_numpy("digit"), result.as_numpy("probabilities")
    assert found.dtype == np.int64 and probabilities.dtype == np.float32
    assert found.tolist() == [answer["digit"] for answer in v1_answers]
    np.testing.assert_allclose(
        probabilities,
        [answer["probabilities"] for answer in v1_answers],
        atol=1e-6 if kind == "image_file" else 1e-3,
    )
    assert (found == labels).mean() >= 0.875  # the seed model reads these digits
    assert result.get_response()["model_version"] == "1"


@integration
def test_samples_as_floats_or_as_bytes_are_the_same_samples(
    client: triton.InferenceServerClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    floats = client.infer("mnist", [tensor_of("pixels", digits[0], True)])
    uint8 = client.infer("mnist", [tensor_of("image", digits[0], True)])
    np.testing.assert_allclose(
        floats.as_numpy("probabilities"), uint8.as_numpy("probabilities"), atol=1e-7
    )


@integration
def test_one_image_file_answers_as_v1_predict_does(
    client: triton.InferenceServerClient,
    digits: tuple[np.ndarray, np.ndarray],
    v1_answers: list[dict],
) -> None:
    """One image takes /v1/predict's own path (the shared micro-batch), several the batch's."""
    result = client.infer("mnist", [tensor_of("image_file", digits[0][:1], True)])
    assert result.as_numpy("digit").tolist() == [v1_answers[0]["digit"]]
    np.testing.assert_allclose(
        result.as_numpy("probabilities")[0], v1_answers[0]["probabilities"], atol=1e-6
    )


@integration
def test_binary_and_json_outputs_hold_the_same_values(
    client: triton.InferenceServerClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    tensor = tensor_of("image", digits[0], True)
    answers = {
        binary: client.infer(
            "mnist",
            [tensor],
            outputs=[
                triton.InferRequestedOutput(n, binary_data=binary)
                for n in ("probabilities", "digit")
            ],
        )
        for binary in (True, False)
    }
    for name in ("probabilities", "digit"):
        assert "data" not in answers[True].get_output(name)
        assert "data" in answers[False].get_output(name)
        np.testing.assert_array_equal(answers[True].as_numpy(name), answers[False].as_numpy(name))


@integration
def test_binary_outputs_follow_the_json_whose_length_the_header_gives(
    server: Server, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    body, json_size = triton.InferenceServerClient.generate_request_body(
        [tensor_of("image", digits[0], True)]
    )
    response = httpx.post(
        f"{server.url}/v2/models/mnist/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(json_size)},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [
        COUNT * 10 * 4,
        COUNT * 8,
    ]
    assert len(response.content) == length + COUNT * 10 * 4 + COUNT * 8


@integration
def test_only_the_outputs_asked_for(
    client: triton.InferenceServerClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    result = client.infer(
        "mnist",
        [tensor_of("image", digits[0], True)],
        outputs=[triton.InferRequestedOutput("digit")],
        request_id="req-1",
    )
    assert result.as_numpy("probabilities") is None
    assert result.as_numpy("digit").shape == (COUNT,)
    assert result.get_response()["id"] == "req-1"


@integration
def test_a_pinned_version_answers_with_that_version(
    client: triton.InferenceServerClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    tensor = tensor_of("image_file", digits[0], True)
    served = client.infer("mnist", [tensor])
    pinned = client.infer("mnist", [tensor], model_version="2")
    assert pinned.get_response()["model_version"] == "2"
    assert served.get_response()["model_version"] == "1"
    assert not np.allclose(served.as_numpy("probabilities"), pinned.as_numpy("probabilities"))


def _bad(name: str, shape: list[int], datatype: str, array: np.ndarray) -> triton.InferInput:
    return triton.InferInput(name, shape, datatype).set_data_from_numpy(array)


@integration
@pytest.mark.parametrize(
    ("model", "version", "tensor", "status", "message"),
    [
        ("mnist", "", _bad("pixels", [1, 784], "FP64", np.zeros((1, 784))),
         "400", "input 'pixels' is FP32, not 'FP64'"),
        ("mnist", "", _bad("image", [1, 784], "UINT8", np.zeros((1, 784), np.uint8)),
         "400", "input 'image' has shape [-1, 28, 28], not [1, 784]"),
        ("mnist", "", _bad("image", [65, 28, 28], "UINT8", np.zeros((65, 28, 28), np.uint8)),
         "400", "input 'image' holds 65 images; send 1 to 64 in one request"),
        ("mnist", "", _bad("pixels", [1, 784], "FP32", np.full((1, 784), 2, np.float32)),
         "400", "input 'pixels' holds values from 2 to 2: send MNIST samples in [0, 1], white "
         "ink on black"),
        ("mnist", "", _bad("image_file", [1], "BYTES", np.array([b"not an image"], object)),
         "400", "the upload is not a PNG, JPEG, GIF, BMP or WebP image (cannot identify its "
         "format)"),
        ("mnist", "", _bad("image_file", [1], "BYTES", np.array([png(np.zeros((40, 40),
         np.uint8))], object)), "422", "no digit found: the image holds no ink that looks like "
         "a digit (it is blank; the ink is less than a tenth darker than its paper; the digit "
         "spans less than 4% of the picture's longer side; or there are only specks, lines or "
         "a texture)"),
        ("fashion", "", _bad("image", [1, 28, 28], "UINT8", np.zeros((1, 28, 28), np.uint8)),
         "404", "unknown model 'fashion': this server serves 'mnist'"),
        ("mnist", "9", _bad("image", [1, 28, 28], "UINT8", np.zeros((1, 28, 28), np.uint8)),
         "404", "mnist has no version 9 (versions: 1, 2)"),
    ],
)  # fmt: skip
def test_errors_are_the_protocols_with_their_status(
    client: triton.InferenceServerClient,
    model: str,
    version: str,
    tensor: triton.InferInput,
    status: str,
    message: str,
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        client.infer(model, [tensor], model_version=version)
    assert (caught.value.status(), caught.value.message()) == (status, message)


@integration
def test_an_unknown_output_is_400(
    client: triton.InferenceServerClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        client.infer(
            "mnist",
            [tensor_of("image", digits[0], True)],
            outputs=[triton.InferRequestedOutput("logits")],
        )
    assert caught.value.status() == "400"
    assert caught.value.message() == (
        "unknown output 'logits': this model answers 'probabilities' (FP32 [-1, 10]) and "
        "'digit' (INT64 [-1])"
    )


@integration
def test_a_body_over_the_limit_is_the_guards_413_in_the_protocols_shape(
    client: triton.InferenceServerClient,
) -> None:
    files = np.array([b"\0" * (9 * 1024 * 1024)], dtype=object)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("mnist", [_bad("image_file", [1], "BYTES", files)])
    assert caught.value.status() == "413"
    assert caught.value.message() == "the request body is over the limit of 8388608 bytes"


@integration
def test_a_json_request_with_a_base64_png_as_curl_sends_it(
    server: Server, digits: tuple[np.ndarray, np.ndarray], v1_answers: list[dict]
) -> None:
    """The README's curl example: JSON, Content-Type application/json, the PNG in base64."""
    request = {
        "inputs": [
            {
                "name": "image_file",
                "shape": [1],
                "datatype": "BYTES",
                "data": [base64.b64encode(png(digits[0][0])).decode()],
            }
        ]
    }
    response = httpx.post(f"{server.url}/v2/models/mnist/infer", json=request)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["digit"] == {
        "name": "digit",
        "datatype": "INT64",
        "shape": [1],
        "data": [v1_answers[0]["digit"]],
    }


@integration
def test_v2_requests_are_counted_by_route_template(
    server: Server, client: triton.InferenceServerClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    client.infer("mnist", [tensor_of("image", digits[0], True)])
    client.infer("mnist", [tensor_of("image", digits[0], True)], model_version="2")
    client.get_model_metadata("mnist")
    text = httpx.get(f"{server.url}/metrics").text
    for route in (
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{version}/infer",
        "/v2/models/{model_name}",
    ):
        method = "GET" if route == "/v2/models/{model_name}" else "POST"
        assert (
            f'mnist_http_requests_total{{method="{method}",route="{route}",status="200"}}' in text
        )
    assert 'route="/v2/models/mnist' not in text  # templates, never paths


# Through the app (TestClient): what the guards and the routing answer on /v2 paths.

MakeClient = Callable[..., TestClient]


def test_every_error_on_a_v2_path_is_the_protocols_shape(
    tiny_store: Store, make_client: MakeClient
) -> None:
    app = make_client(tiny_store)
    answers = {
        "/v2/models/mnist/versions/abc": (400, "path.version: Input should be a valid integer, "
                                          "unable to parse string as an integer"),
        "/v2/models/mnist/versions/0": (400, "path.version: Input should be greater than or "
                                        "equal to 1"),
        "/v2/models/mnist/versions/4": (404, "mnist has no version 4 (versions: 1)"),
        "/v2/models/fashion/ready": (404, "unknown model 'fashion': this server serves 'mnist'"),
        "/v2/nothing": (404, "no route /v2/nothing: see /docs for the API"),
    }  # fmt: skip
    for path, (status, message) in answers.items():
        response = app.get(path)
        assert (response.status_code, response.json()) == (status, {"error": message}), path
    wrong_method = app.get("/v2/models/mnist/infer")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "/v2/models/mnist/infer takes POST, not GET"}
    assert app.get("/v1/models/abc").json()["error"] == "invalid_request"  # /v1 keeps its own


def test_a_compressed_body_is_415(tiny_store: Store, make_client: MakeClient) -> None:
    response = make_client(tiny_store).post(
        "/v2/models/mnist/infer", content=b"\x1f\x8b", headers={"content-encoding": "gzip"}
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": "Content-Encoding 'gzip' is not supported: send the body as it is"
    }


def test_before_a_model_loads_v2_is_live_but_not_ready(
    tmp_path: Path, make_client: MakeClient
) -> None:
    app = make_client(tmp_path / "empty")
    assert app.get("/v2/health/live").json() == {"live": True}
    for response in (
        app.get("/v2/health/ready"),
        app.get("/v2/models/mnist/ready"),
        app.post("/v2/models/mnist/infer", content=b"{}"),
    ):
        assert response.status_code == 503
        assert response.json()["error"].startswith("no model is loaded yet")
        assert response.headers["retry-after"] == "5"


def test_a_blank_image_among_several_names_its_index(
    tiny_store: Store, make_client: MakeClient
) -> None:
    files = [digit_png(), png(np.zeros((40, 40), np.uint8))]
    tensor = triton.InferInput("image_file", [2], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=object))
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor])
    response = make_client(tiny_store).post(
        "/v2/models/mnist/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(json_size)},
    )
    assert response.status_code == 422
    assert response.json()["error"].startswith("image 1 of 2: no digit found")


def test_v2_predictions_are_counted_once_each(tiny_store: Store, make_client: MakeClient) -> None:
    """Samples (the sample batcher) and files (the upload batcher, or a stack of several)
    add one prediction each to the digit counter and the confidence histogram."""
    client = make_client(tiny_store)

    def counted() -> tuple[float, float]:
        digits = sum(
            REGISTRY.get_sample_value("mnist_predictions_total", {"digit": str(d)}) or 0.0
            for d in range(10)
        )
        return digits, REGISTRY.get_sample_value("mnist_prediction_confidence_count") or 0.0

    pixels = np.zeros((3, 28, 28), np.uint8)
    pixels[:, 6:22, 12:16] = 255
    requests = [
        ([tensor_of("image", pixels, binary=False)], 3),
        ([tensor_of("image_file", pixels[:1], binary=True)], 1),
        ([tensor_of("image_file", pixels[:2], binary=True)], 2),
    ]
    for inputs, images in requests:
        before = counted()
        body, json_size = triton.InferenceServerClient.generate_request_body(inputs)
        headers = {"Inference-Header-Content-Length": str(json_size)} if json_size else {}
        response = client.post("/v2/models/mnist/infer", content=body, headers=headers)
        assert response.status_code == 200, response.text
        after = counted()
        assert (after[0] - before[0], after[1] - before[1]) == (images, images)
