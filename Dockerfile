# syntax=docker/dockerfile:1
# Two targets from one file:
#   serve: FastAPI + ONNX Runtime + Pillow + OpenCV (headless) + h5py + prometheus-client; no
#          TensorFlow; non-root
#   train: TensorFlow/Keras, the service's imaging code for the gate's real-world uploads;
#          trains and publishes into the store volume
# Dependencies are installed from pyproject.toml in their own layer, before the source,
# so editing code does not reinstall them.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app
WORKDIR /app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app
COPY pyproject.toml ./
# Print the requirements of the given extras, read from pyproject.toml (the one source).
COPY deploy/docker/requirements.py ./deploy/docker/requirements.py

FROM base AS serve
RUN python deploy/docker/requirements.py serve > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY service/ ./service/
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
# Exec form: the server is PID 1 and gets SIGTERM itself (then finishes in-flight requests).
CMD ["python", "-m", "service.cli", "--host", "0.0.0.0", "--port", "8000", "--store", "/models", "--workers", "2"]

FROM base AS train
# The gate's real-world evaluation types digits in the DejaVu fonts.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN python deploy/docker/requirements.py train > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
# training/ reads uploads with the service's own decoding and preprocessing, and runs the
# version it compares with on the service's runtime (training/realworld/, training/pipeline.py).
COPY service/ ./service/
COPY training/ ./training/
RUN mkdir -p /models && chown 10001:10001 /models
USER 10001:10001
CMD ["python", "-m", "training.cli", "--recipe", "seed", "--store", "/models", "--promote", "production"]
