"""The references the harness measures the service against, as ASGI apps for uvicorn.

- `noop`: FastAPI endpoints that receive the same request as /v1/predict and do nothing
  with it: the HTTP ceiling (`/multipart` parses the form and reads the file, `/raw` reads
  the body).
- `textbook`: the course's way of serving, `model.predict` of the Keras model inside the
  handler, on the same model file (`BENCH_MODEL`).
"""

from __future__ import annotations

import io
import os

import numpy as np
from fastapi import FastAPI, Request
from PIL import Image

noop = FastAPI()


@noop.post("/multipart")
async def multipart(request: Request) -> dict[str, int]:
    async with request.form() as form:
        data = await form["file"].read()
    return {"bytes": len(data)}


@noop.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    return {"bytes": len(await request.body())}


def make_textbook() -> FastAPI:
    """FastAPI + Keras `model.predict` per request, as the textbook serves a model."""
    import keras

    app = FastAPI()
    model = keras.saving.load_model(os.environ["BENCH_MODEL"])

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, object]:
        async with request.form() as form:
            data = await form["file"].read()
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32) / 255
        probabilities = model.predict(pixels.reshape(1, 784), verbose=0)[0]
        return {"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()}

    return app
