"""The Open Inference Protocol's codec: request bodies as tritonclient writes them, every
refusal with its message, and responses that tritonclient reads back."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
import tritonclient.http as triton

from service.errors import InvalidInferenceRequest
from service.oip import (
    encode_response,
    json_values_bound,
    max_json_values,
    model_metadata,
    parse_request,
)
from tests.uploads import digit_png

MAX_BATCH = 64


def body_of(
    tensor: triton.InferInput,
    outputs: list[triton.InferRequestedOutput] | None = None,
    request_id: str = "",
) -> tuple[bytes, str | None]:
    """The body and Inference-Header-Content-Length tritonclient sends for one input."""
    body, json_size = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs=outputs, request_id=request_id
    )
    return body, None if json_size is None else str(json_size)


def triton_input(name: str, array: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    return tensor.set_data_from_numpy(array, binary_data=binary)


def request_json(**fields: object) -> bytes:
    """A JSON request with one `pixels` input of one zero sample, changed by `fields`."""
    tensor = {"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784}
    return json.dumps({"inputs": [tensor], **fields}).encode()


def refusal(body: bytes, header_length: str | None = None, max_batch: int = MAX_BATCH) -> str:
    with pytest.raises(InvalidInferenceRequest) as caught:
        parse_request(body, header_length, max_batch)
    assert caught.value.status == 400
    return caught.value.detail


@pytest.mark.parametrize("binary", [True, False])
def test_fp32_samples_from_tritonclient(binary: bool) -> None:
    samples = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    asked = parse_request(*body_of(triton_input("pixels", samples, "FP32", binary)), MAX_BATCH)
    assert asked.input == "pixels" and asked.files is None
    assert asked.samples is not None and asked.samples.dtype == np.float32
    np.testing.assert_array_equal(asked.samples, samples)


@pytest.mark.parametrize("binary", [True, False])
def test_uint8_images_are_divided_by_255(binary: bool) -> None:
    images = np.arange(2 * 784).reshape(2, 28, 28).astype(np.uint8)
    asked = parse_request(*body_of(triton_input("image", images, "UINT8", binary)), MAX_BATCH)
    assert asked.samples is not None
    np.testing.assert_allclose(asked.samples, images.reshape(2, 784) / 255, rtol=1e-6)


def test_binary_bytes_are_the_files_themselves() -> None:
    files = np.array([digit_png(), b"\x00" * 7, b""], dtype=object)
    asked = parse_request(*body_of(triton_input("image_file", files, "BYTES", True)), MAX_BATCH)
    assert asked.files == [digit_png(), b"\x00" * 7, b""] and asked.samples is None


def test_json_bytes_are_base64_strings() -> None:
    encoded = np.array([base64.b64encode(digit_png())], dtype=object)
    asked = parse_request(*body_of(triton_input("image_file", encoded, "BYTES", False)), MAX_BATCH)
    assert asked.files == [digit_png()]


def test_json_data_may_be_nested_as_the_shape() -> None:
    images = np.arange(784).reshape(1, 28, 28) % 256
    tensor = {"name": "image", "datatype": "UINT8", "shape": [1, 28, 28], "data": images.tolist()}
    asked = parse_request(json.dumps({"inputs": [tensor]}).encode(), None, MAX_BATCH)
    assert asked.samples is not None
    np.testing.assert_allclose(asked.samples[0], images.reshape(784) / 255, rtol=1e-6)


def test_outputs_asked_for_in_their_order_each_binary_or_not() -> None:
    outputs = [
        triton.InferRequestedOutput("digit", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=True),
    ]
    zeros = np.zeros((1, 784), np.float32)
    asked = parse_request(
        *body_of(triton_input("pixels", zeros, "FP32", True), outputs, request_id="r7"), MAX_BATCH
    )
    assert asked.outputs == (("digit", False), ("probabilities", True))
    assert asked.id == "r7"


def test_all_outputs_by_default_binary_as_binary_data_output_says() -> None:
    assert parse_request(request_json(), None, MAX_BATCH).outputs == (
        ("probabilities", False),
        ("digit", False),
    )
    everything_binary = request_json(parameters={"binary_data_output": True})
    asked = parse_request(everything_binary, None, MAX_BATCH)
    assert asked.outputs == (("probabilities", True), ("digit", True))
    one_not = request_json(
        parameters={"binary_data_output": True},
        outputs=[{"name": "digit", "parameters": {"binary_data": False}}],
    )
    assert parse_request(one_not, None, MAX_BATCH).outputs == (("digit", False),)


def _pixels(**changes: object) -> bytes:
    tensor = {"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784}
    return json.dumps({"inputs": [{**tensor, **changes}]}).encode()


ACCEPTED = "'pixels' (FP32 [-1, 784]), 'image' (UINT8 [-1, 28, 28]), 'image_file' (BYTES [-1])"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the inference request is not JSON (Expecting value: line 1 column 1 "
         "(char 0)); binary tensor data needs an Inference-Header-Content-Length"),
        (b"[1]", "the inference request must be a JSON object, not an array"),
        (b"[" * 10_000, "the inference request is not JSON (maximum recursion depth exceeded "
         "while decoding a JSON array from a unicode string); binary tensor data needs an "
         "Inference-Header-Content-Length"),
        (request_json(id=5), "'id' must be a string, not a number"),
        (request_json(parameters=[]), "the request's 'parameters' must be an object, not an array"),
        (request_json(parameters={"x": None}),
         "the request's 'parameters': 'x' must be a string, number or boolean"),
        (request_json(parameters={"binary_data_output": "yes"}),
         "the request's 'parameters': 'binary_data_output' must be true or false, not 'yes'"),
        (json.dumps({"inputs": []}).encode(), f"send exactly one input, one of {ACCEPTED}; got 0"),
        (json.dumps({"inputs": {}}).encode(),
         "'inputs' must be an array of one input, not an object"),
        (json.dumps({"inputs": [7]}).encode(), "an input must be an object, not a number"),
        (_pixels(name=None), "an input's 'name' must be a string, not null"),
        (_pixels(name="x"), f"unknown input 'x': send one of {ACCEPTED}"),
        (_pixels(datatype="FP64"), "input 'pixels' is FP32, not 'FP64'"),
        (_pixels(shape=[1, 28, 28]), "input 'pixels' has shape [-1, 784], not [1, 28, 28]"),
        (_pixels(shape=[1, -784]),
         "input 'pixels': 'shape' must be an array of sizes, not [1, -784]"),
        (_pixels(shape=[1.0, 784]),
         "input 'pixels': 'shape' must be an array of sizes, not [1.0, 784]"),
        (_pixels(shape=[0, 784], data=[]),
         "input 'pixels' holds 0 images; send 1 to 64 in one request"),
        (_pixels(shape=[65, 784]), "input 'pixels' holds 65 images; send 1 to 64 in one request"),
        (_pixels(shape=[2, 784]), "input 'pixels' of shape [2, 784] holds 1568 values, flat or "
         "nested as its shape; 'data' has 784 items"),
        (_pixels(data=[[0] * 392] * 2), "input 'pixels' of shape [1, 784] holds 784 values, flat "
         "or nested as its shape; 'data' has 2 items"),
        (_pixels(shape=[2, 784], data=[[0] * 700] * 2),
         "input 'pixels' of shape [2, 784] holds 1568 values, not 1400"),
        (_pixels(data=[0] * 783 + ["0"]), "input 'pixels': 'data' must be an array of numbers"),
        (_pixels(shape=[2, 784], data=[[0] * 784, [0] * 783]),
         "input 'pixels': 'data' must be an array of numbers"),
        (_pixels(data=[True] * 784), "input 'pixels': 'data' must be an array of numbers"),
        (_pixels(data=[10**30] * 784), "input 'pixels': 'data' must be an array of numbers"),
        (_pixels(data="0"), "input 'pixels': 'data' must be an array of numbers"),
        (_pixels(data=None), "input 'pixels': 'data' must be an array of numbers"),
        (_pixels(data=[2] + [0] * 783), "input 'pixels' holds values from 0 to 2: send MNIST "
         "samples in [0, 1], white ink on black"),
        (_pixels(data=[-0.5] + [0] * 783), "input 'pixels' holds values from -0.5 to 0: send "
         "MNIST samples in [0, 1], white ink on black"),
        (_pixels(data=[1e300] + [0] * 783), "input 'pixels' holds NaN or infinite values"),
        (request_json().replace(b"[0, 0,", b"[1e400, 0,", 1),
         "input 'pixels' holds NaN or infinite values"),
        (request_json().replace(b"[0, 0,", b"[NaN, 0,", 1),
         "the inference request is not JSON (NaN is not a JSON number); binary tensor data "
         "needs an Inference-Header-Content-Length"),
        (_pixels(parameters={"shared_memory_region": "r"}),
         "input 'pixels': 'parameters': 'shared_memory_region': this server has no shared "
         "memory; send the data"),
        (_pixels(data=None).replace(b', "data": null', b""),
         "input 'pixels' has neither 'data' nor a binary_data_size parameter"),
        (_pixels(parameters={"binary_data_size": 3136}), "input 'pixels' has both 'data' and "
         "binary_data_size: send one"),
        (request_json(outputs={}), "'outputs' must be an array, not an object"),
        (request_json(outputs=["digit"]),
         "each of 'outputs' must be an object with a 'name' string"),
        (request_json(outputs=[{"name": "logits"}]), "unknown output 'logits': this model answers "
         "'probabilities' (FP32 [-1, 10]) and 'digit' (INT64 [-1])"),
        (request_json(outputs=[{"name": "digit"}, {"name": "digit"}]),
         "output 'digit' is asked for twice"),
        (request_json(outputs=[{"name": "digit", "parameters": {"classification": 3}}]),
         "output 'digit': 'parameters': 'classification' is not supported: ask for 'digit'"),
        (request_json(outputs=[{"name": "digit", "parameters": {"binary_data": 1}}]),
         "output 'digit': 'parameters': 'binary_data' must be true or false, not 1"),
    ],
)  # fmt: skip
def test_json_that_does_not_add_up_is_refused_saying_why(body: bytes, message: str) -> None:
    assert refusal(body) == message


UINT8 = "input 'image': UINT8 values are whole numbers from 0 to 255"


def _image(**changes: object) -> bytes:
    tensor = {"name": "image", "datatype": "UINT8", "shape": [1, 28, 28], "data": [0] * 784}
    return json.dumps({"inputs": [{**tensor, **changes}]}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_image(data=[256] + [0] * 783), UINT8),
        (_image(data=[-1] + [0] * 783), UINT8),
        (_image(data=[0.5] + [0] * 783), UINT8),
    ],
)  # fmt: skip
def test_uint8_values_must_be_bytes(body: bytes, message: str) -> None:
    assert refusal(body) == message


def _files(data: object, shape: list[int] | None = None) -> bytes:
    tensor = {"name": "image_file", "datatype": "BYTES", "shape": shape or [1], "data": data}
    return json.dumps({"inputs": [tensor]}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_files(["not base64!"]), "element 0 of input 'image_file' is not base64: in JSON, send "
         "each encoded image as a base64 string (or as bytes with the binary tensor extension)"),
        (_files(["é"]), "element 0 of input 'image_file' is not base64: in JSON, send each "
         "encoded image as a base64 string (or as bytes with the binary tensor extension)"),
        (_files([1]), "input 'image_file': 'data' must be an array of base64 strings"),
        (_files(["AA==", "AA=="]), "input 'image_file' of shape [1] has 2 elements"),
    ],
)  # fmt: skip
def test_json_bytes_must_be_one_base64_string_per_image(body: bytes, message: str) -> None:
    assert refusal(body) == message


def binary_body(tensor: dict[str, object], data: bytes) -> tuple[bytes, str]:
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + data, str(len(header))


def prefixed(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def _bytes_tensor(size: int, count: int = 1) -> dict[str, object]:
    return {"name": "image_file", "datatype": "BYTES", "shape": [count],
            "parameters": {"binary_data_size": size}}  # fmt: skip


def test_leading_zeros_in_the_header_length_are_a_number_still() -> None:
    body, length = body_of(triton_input("pixels", np.zeros((1, 784), np.float32), "FP32", True))
    assert parse_request(body, "0" * 5000 + str(length), MAX_BATCH).samples is not None


@pytest.mark.parametrize("empty", [b"[]", b"{}", b'""', b"0"])
def test_json_of_more_values_than_any_request_needs_is_refused_before_parsing(
    empty: bytes,
) -> None:
    """8 MB of `[[],[],...]` made json.loads build 2.7 million lists (314 MB) before any
    check (review)."""
    values = 200_000
    body = b'{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,784],"data":['
    body += b",".join([empty] * values) + b"]}]}"
    assert json_values_bound(body) > values
    assert refusal(body, max_batch=4) == (
        f"the inference request has up to {json_values_bound(body)} JSON values, more than the "
        f"{max_json_values(4)} that 4 images need: send at most 4 images, with the data as "
        "binary tensor data "
        "(Inference-Header-Content-Length) or fewer values"
    )


def test_the_most_values_a_request_of_max_batch_images_needs_pass() -> None:
    images = np.zeros((MAX_BATCH, 28, 28), np.uint8).tolist()  # nested: 28 rows an image
    tensor = {"name": "image", "datatype": "UINT8", "shape": [MAX_BATCH, 28, 28], "data": images}
    body = json.dumps({"inputs": [tensor], "outputs": [{"name": "digit"}]}).encode()
    assert json_values_bound(body) <= max_json_values(MAX_BATCH)
    assert parse_request(body, None, MAX_BATCH).samples.shape == (MAX_BATCH, 784)


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [
        (request_json(), "12x", "Inference-Header-Content-Length must be a number of bytes, "
         "not '12x'"),
        (request_json(), "-1", "Inference-Header-Content-Length must be a number of bytes, "
         "not '-1'"),
        (request_json(), "٣", "Inference-Header-Content-Length must be a number of bytes, "
         "not '٣'"),
        (request_json(), "99999999999999999999", "Inference-Header-Content-Length is "
         f"99999999999999999999 but the body has {len(request_json())} bytes"),
        (request_json(), "9" * 5000, "Inference-Header-Content-Length is 99999999999999999999"
         f"... (5000 digits) but the body has {len(request_json())} bytes"),  # int() refuses
        (request_json(), "0" * 5000 + "99999", "Inference-Header-Content-Length is 99999 but "
         f"the body has {len(request_json())} bytes"),
        (request_json() + b"\x00\x01", str(len(request_json())), "2 bytes follow the JSON but "
         "no input has binary_data_size"),
        (*binary_body(_bytes_tensor(9), prefixed(b"abcd")), "input 'image_file' has "
         "binary_data_size 9, but 8 bytes follow the JSON"),
        (*binary_body(_bytes_tensor(True), b"\x01"), "input 'image_file' has binary_data_size "
         "True, but 1 bytes follow the JSON"),
        (*binary_body(_bytes_tensor(3), b"\x01\x00\x00"), "input 'image_file': element 0's "
         "length is cut short"),
        (*binary_body(_bytes_tensor(8), prefixed(b"abcde")[:-1]), "input 'image_file': element "
         "0 claims 5 bytes but 4 remain"),
        (*binary_body(_bytes_tensor(4 * 1000), prefixed(*[b""] * 1000)), "input 'image_file' "
         "of shape [1] has more than 1 elements"),
        (*binary_body(_bytes_tensor(8, 2), prefixed(b"abcd")), "input 'image_file' of shape [2] "
         "has 1 elements"),
        (*binary_body({"name": "pixels", "datatype": "FP32", "shape": [1, 784],
                       "parameters": {"binary_data_size": 784}}, bytes(784)),
         "input 'pixels' of shape [1, 784] is 3136 bytes of FP32, not 784"),
        (*binary_body({"name": "pixels", "datatype": "FP32", "shape": [1, 784],
                       "parameters": {"binary_data_size": 3136}},
                      np.full(784, np.nan, np.float32).tobytes()),
         "input 'pixels' holds NaN or infinite values"),
    ],
)  # fmt: skip
def test_binary_data_that_does_not_add_up_is_refused(
    body: bytes, header_length: str, message: str
) -> None:
    assert refusal(body, header_length) == message


def test_binary_data_without_the_header_says_it_is_missing() -> None:
    header = json.dumps({"inputs": [_bytes_tensor(8)]}).encode()
    assert refusal(header) == (
        "input 'image_file' has binary_data_size but the request has no "
        "Inference-Header-Content-Length header (the length of the JSON before the data)"
    )


def test_a_message_does_not_grow_with_what_the_client_sent() -> None:
    message = refusal(_pixels(name="x" * 1_000_000))
    assert message.startswith("unknown input 'xxxx") and len(message) < 250


def test_the_batch_limit_is_the_one_given() -> None:
    assert parse_request(_pixels(shape=[1, 784]), None, 1).samples is not None
    images = {"name": "image", "datatype": "UINT8", "shape": [2, 28, 28], "data": [0] * 1568}
    body = json.dumps({"inputs": [images]}).encode()
    assert refusal(body, max_batch=1) == "input 'image' holds 2 images; send 1 to 1 in one request"


TENSORS = {
    "probabilities": np.array([[0.1] * 10, [0.0] * 9 + [1.0]], np.float32),
    "digit": np.array([3, 9]),
}


def test_json_outputs_tritonclient_reads() -> None:
    outputs = [("probabilities", False), ("digit", False)]
    body, json_size = encode_response("mnist", 3, "r1", outputs, TENSORS)
    assert json_size is None
    answer = json.loads(body)
    assert answer["model_name"] == "mnist" and answer["model_version"] == "3"
    assert answer["id"] == "r1"
    assert answer["outputs"][1] == {
        "name": "digit",
        "datatype": "INT64",
        "shape": [2],
        "data": [3, 9],
    }
    result = triton.InferResult.from_response_body(body)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), TENSORS["probabilities"])
    assert result.as_numpy("probabilities").dtype == np.float32


def test_binary_outputs_tritonclient_reads_after_the_json() -> None:
    body, json_size = encode_response(
        "mnist", 1, None, [("digit", True), ("probabilities", True)], TENSORS
    )
    assert json_size is not None
    header = json.loads(body[:json_size])
    assert "id" not in header
    assert [o["parameters"] for o in header["outputs"]] == [
        {"binary_data_size": 16},
        {"binary_data_size": 80},
    ]
    assert (
        body[json_size:]
        == TENSORS["digit"].astype("<i8").tobytes()
        + TENSORS["probabilities"].astype("<f4").tobytes()
    )
    result = triton.InferResult.from_response_body(body, header_length=json_size)
    np.testing.assert_array_equal(result.as_numpy("digit"), [3, 9])
    np.testing.assert_array_equal(result.as_numpy("probabilities"), TENSORS["probabilities"])


def test_only_the_outputs_asked_for_are_answered() -> None:
    body, _ = encode_response("mnist", 1, None, [("digit", False)], TENSORS)
    assert [o["name"] for o in json.loads(body)["outputs"]] == ["digit"]


def test_model_metadata_names_every_tensor_and_says_how_to_send_images() -> None:
    metadata = model_metadata("mnist", [1, 2])
    assert metadata["name"] == "mnist" and metadata["versions"] == ["1", "2"]
    assert metadata["inputs"] == [
        {"name": "pixels", "datatype": "FP32", "shape": [-1, 784]},
        {"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]},
        {"name": "image_file", "datatype": "BYTES", "shape": [-1]},
    ]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "digit", "datatype": "INT64", "shape": [-1]},
    ]
    assert "base64" in metadata["properties"]["image_file"]
    assert metadata["properties"]["inputs"] == (
        "send exactly one of the inputs: pixels, image, image_file"
    )
