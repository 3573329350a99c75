"""The Open Inference Protocol (KServe v2, Triton's HTTP API): inference requests and
responses as bytes, with the binary tensor data extension.

A request body is a JSON object, optionally followed by binary tensor data whose place the
`Inference-Header-Content-Length` header gives (the length of the JSON). `parse_request`
reads one input tensor and the outputs asked for, checking every field against the model's
tensors (`INPUTS`, `OUTPUTS`); `encode_response` writes the outputs back, each as JSON or
binary as asked. Pure: no web framework; every refusal is an InvalidInferenceRequest whose
message names the bad value. The work is bounded by the body (capped before it gets here)
and by `max_batch` images a request.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInferenceRequest

SIDE = 28
PIXELS = SIDE * SIDE
DIGITS = 10
# Little-endian, as the binary extension says; BYTES elements carry their own lengths.
DTYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1"), "INT64": np.dtype("<i8")}
BYTES = "BYTES"
LENGTH = struct.Struct("<I")  # the 4-byte length before each BYTES element
BINARY_EXTENSION = "binary_tensor_data"
# Triton's platform name for an ONNX graph on ONNX Runtime (ours is built from model.keras).
PLATFORM = "onnxruntime_onnx"


@dataclass(frozen=True)
class Tensor:
    """A tensor of the model as its metadata shows it (-1: the batch dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    description: str

    def metadata(self) -> dict[str, Any]:
        """The protocol's $metadata_tensor."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def __str__(self) -> str:
        return f"'{self.name}' ({self.datatype} {list(self.shape)})"


INPUTS = {
    tensor.name: tensor
    for tensor in (
        Tensor(
            "pixels",
            "FP32",
            (-1, PIXELS),
            "MNIST samples as the model takes them: 28x28 rows of floats in [0, 1], white ink "
            "on black, straight to the forward pass",
        ),
        Tensor(
            "image",
            "UINT8",
            (-1, SIDE, SIDE),
            "28x28 greyscale images, 0-255, white ink on black as MNIST's, divided by 255 and "
            "sent straight to the forward pass",
        ),
        Tensor(
            "image_file",
            BYTES,
            (-1,),
            "encoded image files (PNG, JPEG, GIF, BMP or WebP) of any size, read as "
            "/v1/predict reads an upload; in JSON each element is a base64 string",
        ),
    )
}
OUTPUTS = {
    tensor.name: tensor
    for tensor in (
        Tensor("probabilities", "FP32", (-1, DIGITS), "probabilities of the digits 0 to 9"),
        Tensor("digit", "INT64", (-1,), "the most probable digit"),
    )
}


def model_metadata(name: str, versions: Sequence[int]) -> dict[str, Any]:
    """The protocol's $metadata_model_response: send exactly one of the inputs."""
    tensors = {**INPUTS, **OUTPUTS}.values()
    return {
        "name": name,
        "versions": [str(version) for version in versions],
        "platform": PLATFORM,
        "inputs": [tensor.metadata() for tensor in INPUTS.values()],
        "outputs": [tensor.metadata() for tensor in OUTPUTS.values()],
        "properties": {
            "inputs": "send exactly one of the inputs: " + ", ".join(INPUTS),
            **{tensor.name: tensor.description for tensor in tensors},
        },
    }


@dataclass(frozen=True)
class InferRequest:
    """What a request asks: one input (either `samples`, (N, 784) float32 in [0, 1], or
    `files`, N encoded images), and the outputs to answer, in order, each as binary data or
    not."""

    id: str | None
    input: str
    samples: np.ndarray | None
    files: list[bytes] | None
    outputs: tuple[tuple[str, bool], ...]


def refuse(detail: str) -> InvalidInferenceRequest:
    """The error for a request that does not add up."""
    return InvalidInferenceRequest(detail)


def parse_request(body: bytes, header_length: str | None, max_batch: int) -> InferRequest:
    """The request in `body`; `header_length` is its Inference-Header-Content-Length (None
    when not sent: the body is all JSON)."""
    json_size = _json_size(header_length, len(body))
    sized = header_length is not None
    header = _json_object(body[:json_size] if sized else body, sized, max_batch)
    binary = memoryview(body)[json_size:]
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise refuse(f"'id' must be a string, not {_json_type(request_id)}")
    parameters = _parameters(header.get("parameters"), "the request's 'parameters'")
    binary_default = _flag(parameters, "binary_data_output", "the request's 'parameters'")
    tensor, spec = _one_input(header.get("inputs"))
    count = _batch(tensor, spec, max_batch)
    samples, files = _input_data(tensor, spec, count, binary, sized)
    outputs = _outputs(header.get("outputs"), binary_default)
    return InferRequest(request_id, spec.name, samples, files, outputs)


def _json_size(header_length: str | None, body_size: int) -> int:
    if header_length is None:
        return body_size
    value = header_length.strip()
    if not (value.isascii() and value.isdigit()):
        raise refuse(
            f"Inference-Header-Content-Length must be a number of bytes, not {shown(value)}"
        )
    digits = value.lstrip("0") or "0"
    # Compared as text first: int() refuses more than 4,300 digits (CVE-2020-10735's limit).
    if len(digits) > len(str(body_size)) or int(digits) > body_size:
        shown_digits = digits if len(digits) <= 20 else f"{digits[:20]}... ({len(digits)} digits)"
        raise refuse(
            f"Inference-Header-Content-Length is {shown_digits} but the body has {body_size} bytes"
        )
    return int(digits)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def json_values_bound(raw: bytes) -> int:
    """An upper bound of the values (numbers, strings, arrays, objects) in the JSON `raw`:
    in an array or object every value but the first follows a comma. Counted before
    parsing, in C: 8 MB of `[[],[],...]` made json.loads build 2.7 million lists, 314 MB
    (review)."""
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1


def max_json_values(max_batch: int) -> int:
    """The most JSON values a request of `max_batch` images needs: its pixels as numbers,
    nested as 28 rows an image, and a thousand for names, parameters and outputs."""
    return max_batch * (PIXELS + SIDE + 1) + 1024


def _json_object(raw: bytes, sized: bool, max_batch: int) -> dict[str, Any]:
    values, most = json_values_bound(raw), max_json_values(max_batch)
    if values > most:
        raise refuse(
            f"the inference request has up to {values} JSON values, more than the {most} that "
            f"{max_batch} images need: send at most {max_batch} images, with the data as binary "
            "tensor data (Inference-Header-Content-Length) or fewer values"
        )
    try:
        header = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        hint = "" if sized else "; binary tensor data needs an Inference-Header-Content-Length"
        raise refuse(f"the inference request is not JSON ({exc}){hint}") from None
    if not isinstance(header, dict):
        raise refuse(f"the inference request must be a JSON object, not {_json_type(header)}")
    return header


def shown(value: object) -> str:
    """A client's value in a message, cut short: the message must not grow with the body."""
    text = repr(value)
    return text if len(text) <= 64 else f"{text[:60]}..."


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _parameters(value: object, where: str) -> dict[str, Any]:
    """A $parameters object: names to strings, numbers or booleans."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise refuse(f"{where} must be an object, not {_json_type(value)}")
    for name, item in value.items():
        if not isinstance(item, str | int | float):  # bool is an int
            raise refuse(f"{where}: {shown(name)} must be a string, number or boolean")
        if name.startswith("shared_memory"):
            raise refuse(f"{where}: {shown(name)}: this server has no shared memory; send the data")
    return value


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool:
    value = parameters.get(name, False)
    if not isinstance(value, bool):
        raise refuse(f"{where}: {name!r} must be true or false, not {shown(value)}")
    return value


def _one_input(inputs: object) -> tuple[dict[str, Any], Tensor]:
    if not isinstance(inputs, list):
        raise refuse(f"'inputs' must be an array of one input, not {_json_type(inputs)}")
    accepted = ", ".join(map(str, INPUTS.values()))
    if len(inputs) != 1:
        raise refuse(f"send exactly one input, one of {accepted}; got {len(inputs)}")
    (tensor,) = inputs
    if not isinstance(tensor, dict):
        raise refuse(f"an input must be an object, not {_json_type(tensor)}")
    name = tensor.get("name")
    if not isinstance(name, str):
        raise refuse(f"an input's 'name' must be a string, not {_json_type(name)}")
    spec = INPUTS.get(name)
    if spec is None:
        raise refuse(f"unknown input {shown(name)}: send one of {accepted}")
    datatype = tensor.get("datatype")
    if datatype != spec.datatype:
        raise refuse(f"input '{name}' is {spec.datatype}, not {shown(datatype)}")
    return tensor, spec


def _batch(tensor: dict[str, Any], spec: Tensor, max_batch: int) -> int:
    """The number of images N, from a shape that must be the input's with N for -1."""
    shape = tensor.get("shape")
    if not (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise refuse(f"input '{spec.name}': 'shape' must be an array of sizes, not {shown(shape)}")
    if len(shape) != len(spec.shape) or list(shape[1:]) != list(spec.shape[1:]):
        raise refuse(f"input '{spec.name}' has shape {list(spec.shape)}, not {shown(shape)}")
    count = shape[0]
    if not 1 <= count <= max_batch:
        raise refuse(
            f"input '{spec.name}' holds {count} images; send 1 to {max_batch} in one request"
        )
    return count


def _input_data(
    tensor: dict[str, Any], spec: Tensor, count: int, binary: memoryview, sized: bool
) -> tuple[np.ndarray | None, list[bytes] | None]:
    """(samples, None) or (None, files), from the JSON's 'data' or the binary data."""
    name = spec.name
    parameters = _parameters(tensor.get("parameters"), f"input '{name}': 'parameters'")
    size = parameters.get("binary_data_size")
    if size is None:
        if binary:
            raise refuse(f"{len(binary)} bytes follow the JSON but no input has binary_data_size")
        if "data" not in tensor:
            raise refuse(f"input '{name}' has neither 'data' nor a binary_data_size parameter")
        data = tensor["data"]
        if spec.datatype == BYTES:
            return None, _base64_files(data, spec, count)
        return _samples(_json_numbers(data, spec, count), spec), None
    if "data" in tensor:
        raise refuse(f"input '{name}' has both 'data' and binary_data_size: send one")
    if not sized:
        raise refuse(
            f"input '{name}' has binary_data_size but the request has no "
            "Inference-Header-Content-Length header (the length of the JSON before the data)"
        )
    if not isinstance(size, int) or isinstance(size, bool) or size != len(binary):
        raise refuse(
            f"input '{name}' has binary_data_size {shown(size)}, but {len(binary)} bytes "
            "follow the JSON"
        )
    if spec.datatype == BYTES:
        return None, _length_prefixed(binary, spec, count)
    dtype = DTYPES[spec.datatype]
    values = count * int(np.prod(spec.shape[1:]))
    if size != values * dtype.itemsize:
        raise refuse(
            f"input '{name}' of shape {[count, *spec.shape[1:]]} is {values * dtype.itemsize} "
            f"bytes of {spec.datatype}, not {size}"
        )
    return _samples(np.frombuffer(binary, dtype), spec), None


def _json_numbers(data: object, spec: Tensor, count: int) -> np.ndarray:
    """JSON 'data' (flat, or nested as the tensor's shape) as a flat array of numbers."""
    values = count * int(np.prod(spec.shape[1:]))
    if isinstance(data, list) and len(data) not in (values, count):  # neither flat nor nested
        shape = [count, *spec.shape[1:]]
        raise refuse(
            f"input '{spec.name}' of shape {shape} holds {values} values, flat or nested as its "
            f"shape; 'data' has {len(data)} items"
        )
    try:
        array = np.asarray(data) if isinstance(data, list) else None
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = None  # ragged nesting, or deeper than NumPy's 64 dimensions
    if array is None or array.dtype.kind not in "iuf":
        raise refuse(f"input '{spec.name}': 'data' must be an array of numbers")
    if array.size != values:
        raise _wrong_size(spec, count, array.size)
    if spec.datatype == "UINT8" and array.dtype.kind == "f":
        raise refuse(f"input '{spec.name}': UINT8 values are whole numbers from 0 to 255")
    return array.reshape(-1)


def _wrong_size(spec: Tensor, count: int, size: int) -> InvalidInferenceRequest:
    shape = [count, *spec.shape[1:]]
    return refuse(f"input '{spec.name}' of shape {shape} holds {np.prod(shape)} values, not {size}")


def _samples(values: np.ndarray, spec: Tensor) -> np.ndarray:
    """(N, 784) float32 in [0, 1] from an input's flat values, refused out of range."""
    if spec.datatype == "UINT8":
        if values.size and (values.min() < 0 or values.max() > 255):
            raise refuse(f"input '{spec.name}': UINT8 values are whole numbers from 0 to 255")
        return (values.astype(np.float32) / np.float32(255)).reshape(-1, PIXELS)
    with np.errstate(over="ignore"):  # a double beyond float32's range: infinite, refused
        samples = values.astype(np.float32, copy=False).reshape(-1, PIXELS)
    if not np.isfinite(samples).all():
        raise refuse(f"input '{spec.name}' holds NaN or infinite values")
    low, high = float(samples.min()), float(samples.max())
    if low < 0 or high > 1:
        raise refuse(
            f"input '{spec.name}' holds values from {low:g} to {high:g}: send MNIST samples in "
            "[0, 1], white ink on black"
        )
    return samples


def _base64_files(data: object, spec: Tensor, count: int) -> list[bytes]:
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise refuse(f"input '{spec.name}': 'data' must be an array of base64 strings")
    if len(data) != count:
        raise refuse(f"input '{spec.name}' of shape [{count}] has {len(data)} elements")
    files = []
    for index, item in enumerate(data):
        try:
            files.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise refuse(
                f"element {index} of input '{spec.name}' is not base64: in JSON, send each "
                "encoded image as a base64 string (or as bytes with the binary tensor extension)"
            ) from None
    return files


def _length_prefixed(buffer: memoryview, spec: Tensor, count: int) -> list[bytes]:
    """The elements of binary BYTES data: each a 4-byte little-endian length, then the
    bytes. At most `count` + 1 steps, each taking 4 bytes or more."""
    files: list[bytes] = []
    offset = 0
    while offset < len(buffer):
        if len(files) == count:
            raise refuse(f"input '{spec.name}' of shape [{count}] has more than {count} elements")
        if offset + LENGTH.size > len(buffer):
            raise refuse(f"input '{spec.name}': element {len(files)}'s length is cut short")
        (length,) = LENGTH.unpack_from(buffer, offset)
        offset += LENGTH.size
        if length > len(buffer) - offset:
            raise refuse(
                f"input '{spec.name}': element {len(files)} claims {length} bytes but "
                f"{len(buffer) - offset} remain"
            )
        files.append(bytes(buffer[offset : offset + length]))
        offset += length
    if len(files) != count:
        raise refuse(f"input '{spec.name}' of shape [{count}] has {len(files)} elements")
    return files


def _outputs(requested: object, binary_default: bool) -> tuple[tuple[str, bool], ...]:
    """(name, as binary) of each output to answer: those asked for, in order, or all."""
    if requested is None or requested == []:
        return tuple((name, binary_default) for name in OUTPUTS)
    if not isinstance(requested, list):
        raise refuse(f"'outputs' must be an array, not {_json_type(requested)}")
    chosen: dict[str, bool] = {}
    for output in requested:
        name = output.get("name") if isinstance(output, dict) else None
        if not isinstance(name, str):
            raise refuse("each of 'outputs' must be an object with a 'name' string")
        if name not in OUTPUTS:
            known = " and ".join(map(str, OUTPUTS.values()))
            raise refuse(f"unknown output {shown(name)}: this model answers {known}")
        if name in chosen:
            raise refuse(f"output '{name}' is asked for twice")
        where = f"output '{name}': 'parameters'"
        parameters = _parameters(output.get("parameters"), where)
        if "classification" in parameters:
            raise refuse(f"{where}: 'classification' is not supported: ask for 'digit'")
        binary = "binary_data" in parameters
        chosen[name] = _flag(parameters, "binary_data", where) if binary else binary_default
    return tuple(chosen.items())


def encode_response(
    model: str,
    version: int,
    request_id: str | None,
    outputs: Sequence[tuple[str, bool]],
    tensors: dict[str, np.ndarray],
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON when binary data follows it (the
    Inference-Header-Content-Length to send), else None."""
    header: dict[str, Any] = {"model_name": model, "model_version": str(version)}
    if request_id is not None:
        header["id"] = request_id
    entries, chunks = [], []
    for name, binary in outputs:
        spec = OUTPUTS[name]
        array = tensors[name].astype(DTYPES[spec.datatype], copy=False)
        entry: dict[str, Any] = {"name": name, "datatype": spec.datatype}
        entry["shape"] = list(array.shape)
        if binary:
            chunks.append(array.tobytes())
            entry["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            entry["data"] = array.reshape(-1).tolist()
        entries.append(entry)
    header["outputs"] = entries
    text = json.dumps(header, separators=(",", ":")).encode()
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)
