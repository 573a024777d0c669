# syntax=docker/dockerfile:1
# docstream worker/API image, in two variants chosen by a build argument:
#   docker build --build-arg VARIANT=cpu  -t docstream:0.1.0-cpu  .
#   docker build --build-arg VARIANT=cuda -t docstream:0.1.0-cuda .
# Both variants share the Python base image. The CUDA variant gets the CUDA
# runtime from torch's own Linux wheels (the nvidia-* packages), so the host
# needs only the NVIDIA driver and container toolkit, not a CUDA base image.
# The model weights (all-MiniLM-L6-v2) ship in a Python package installed with
# the rest, and the build loads them once with the hub switched off, so the
# image never downloads from a model hub. See docs/DEPLOYMENT.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG VARIANT=cpu

FROM ${PYTHON_IMAGE} AS build
ARG VARIANT
# The CPU variant can take torch from a CPU-only wheel index (no CUDA
# libraries: an image several GB smaller): pass its address as
# TORCH_CPU_INDEX. Without it both variants take the default wheels.
ARG TORCH_CPU_INDEX=
ENV UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv && pip install --no-cache-dir uv
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache/uv \
    case "$VARIANT" in \
      cpu) uv pip install ${TORCH_CPU_INDEX:+--index-url "$TORCH_CPU_INDEX"} torch ;; \
      cuda) uv pip install torch ;; \
      *) echo "VARIANT must be cpu or cuda, got '$VARIANT'" >&2; exit 1 ;; \
    esac
# Dependencies before the source, so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv pip install -r pyproject.toml
# The runtime packages only, as the wheel holds them (pyproject.toml's
# packages.find; tests/unit/test_packaging.py checks both): tools/, bench/ and
# tests/ run from a checkout and stay out of the image.
COPY core core
COPY schemas schemas
COPY streams streams
COPY sinks sinks
COPY api api
COPY ops ops
RUN --mount=type=cache,target=/root/.cache/uv uv pip install --no-deps .
# Fail the build unless the packaged weights load with the hub switched off.
WORKDIR /
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -c "\
from sentence_transformers import SentenceTransformer; \
from streams.embedding.model import resolve_model; \
model = SentenceTransformer(resolve_model('all-MiniLM-L6-v2'), device='cpu'); \
assert model.encode(['ready']).shape == (1, 384)"

FROM ${PYTHON_IMAGE} AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="docstream" \
      org.opencontainers.image.description="docstream worker and API (${VARIANT})" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --gid 10001 docstream \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/docstream docstream \
 && install -d -o 10001 -g 10001 /var/lib/docstream
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DOCSTREAM_API_HOST=0.0.0.0 \
    DOCSTREAM_API_PORT=8000 \
    DOCSTREAM_IMAGE_VARIANT=${VARIANT} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
# The worker's Faust state (docstream-data/) is written under the working directory.
WORKDIR /var/lib/docstream
EXPOSE 8000
# /health/live answers once the process serves HTTP: `docstream api` and
# `docstream worker` do; `docstream worker --no-api` serves none (disable it there).
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('DOCSTREAM_API_PORT', '8000'), timeout=2)"]
CMD ["docstream", "worker"]
