# The project's images, one recipe. Build from the repository root with a target:
#   docker build --network host --target serving -t ghcr.io/symptom-dx/serving:0.1.0 .
# `make images` builds them all (REGISTRY, TAG) and points the manifests and the compiled
# pipeline at the same references. Targets:
#   serving              python -m serving       the KServe v2 predictor (manifests/serving/)
#   ui                   python -m ui            the Gradio symptom form (manifests/ui/)
#   components           the KFP components, the symptom-dx command and MLflow's server
#   storage-initializer  KServe's model download step (kserve-storage), for clusters that
#                        cannot pull KServe's own image
# Each installs one extra of the project (pyproject.toml) at the versions of requirements.lock,
# as uid 1000 (the manifests' runAsUser) on a read-only root: only /tmp must be writable.
ARG BASE_IMAGE=debian:bookworm-slim

# Debian's Python 3.11, the interpreter the lock is resolved for, and nothing else.
FROM ${BASE_IMAGE} AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp

# The project's source: what .dockerignore lets into the build context.
FROM scratch AS project
COPY . /src/

# uv, and the files that decide versions; python3-venv only here (it brings ensurepip's pip).
FROM python AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --cert /etc/ssl/certs/ca-certificates.crt uv==0.13.8
ENV PATH=/opt/uv/bin:$PATH UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 UV_PYTHON=/opt/venv/bin/python \
    UV_NATIVE_TLS=1
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./

# Per image: first the extra's dependencies (a layer that changes only with the lock), then the
# project itself without dependencies. Bytecode is compiled here: the root is read-only later.
FROM build AS build-serving
RUN uv venv -q /opt/venv --python /usr/bin/python3.11 \
 && uv pip install -q -c requirements.lock -r pyproject.toml --extra serving
COPY --from=project /src /src
RUN uv pip install -q --no-deps . && uv pip check -q

FROM build AS build-ui
RUN uv venv -q /opt/venv --python /usr/bin/python3.11 \
 && uv pip install -q -c requirements.lock -r pyproject.toml --extra ui
COPY --from=project /src /src
RUN uv pip install -q --no-deps . && uv pip check -q

FROM build AS build-components
RUN uv venv -q /opt/venv --python /usr/bin/python3.11 \
 && uv pip install -q -c requirements.lock -r pyproject.toml --extra components
COPY --from=project /src /src
RUN uv pip install -q --no-deps . && uv pip check -q

FROM build AS build-storage-initializer
RUN uv venv -q /opt/venv --python /usr/bin/python3.11 \
 && uv pip install -q -c requirements.lock -r pyproject.toml --extra storage-initializer
COPY --from=project /src /src
RUN uv pip install -q --no-deps . && uv pip check -q

# REST (v1, v2, /metrics) on 8080, gRPC v2 on 8081. KServe's runtime passes --model_name,
# --model_dir, --http_port (manifests/serving/servingruntime.yaml); see `--help`.
FROM python AS serving
COPY --from=build-serving /opt/venv /opt/venv
ENV MODEL_DIR=/mnt/models
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "serving"]

# The page on 7860, its Prometheus metrics at /metrics on the same port.
FROM python AS ui
COPY --from=build-ui /opt/venv /opt/venv
ENV GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 SYMPTOM_DX_UI_HOST=0.0.0.0
USER 1000:1000
EXPOSE 7860
ENTRYPOINT ["python", "-m", "ui"]

# KFP runs each component's own command in it (`python3 -m kfp.dsl.executor_main ...`); the
# manifests run `mlflow server` and `symptom-dx` from it.
FROM python AS components
COPY --from=build-components /opt/venv /opt/venv
WORKDIR /tmp
USER 1000:1000

# KServe calls it as `<entrypoint> SRC_URI DEST_PATH` before the predictor starts.
FROM python AS storage-initializer
COPY --from=build-storage-initializer /opt/venv /opt/venv
USER 1000:1000
ENTRYPOINT ["python", "-m", "serving.storage_initializer"]
