# docstream worker/API image. Model weights come from a Python package, so the
# image never downloads from a model hub at run time.
#   docker build -t docstream .
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --upgrade pip uv
COPY pyproject.toml README.md ./
COPY core core
COPY schemas schemas
COPY streams streams
COPY sinks sinks
COPY api api
COPY ops ops
COPY samples samples
RUN VIRTUAL_ENV=/opt/venv /opt/venv/bin/uv pip install --no-cache .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 docstream
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    DOCSTREAM_API_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER docstream
WORKDIR /home/docstream
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)" || exit 1
CMD ["docstream", "worker"]
