# The ML Metadata gRPC server of Kubeflow Pipelines' metadata-grpc-deployment, made of PyPI's
# ml-metadata wheel (mlmd_server.py) because gcr.io/tfx-oss-public/ml_metadata_store_server
# cannot be pulled here. Build context: this folder.
#   docker build --network host -f mlmd.Dockerfile -t localhost/symptomdx/mlmd-server:1.17.1 .
# Command /bin/metadata_store_server with the upstream flags (see mlmd_server.py); gRPC on
# 0.0.0.0:8080, and grpc-web for KFP's dashboard with --grpc_web_port=9090 (in place of upstream's
# Envoy); runs as uid 1000, gid 0 (the manifest's runAsUser/runAsGroup).
ARG BASE_IMAGE=debian:bookworm-slim

# Debian's Python 3.11: ml-metadata 1.17.1 ships a cp311 manylinux wheel.
FROM ${BASE_IMAGE} AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# The venv, built where pip and the CA bundle are (the base image carries this machine's trust
# anchors; ca-certificates turns them into the bundle pip is pointed at).
FROM python AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# ml-metadata 1.17.1 wants protobuf>=4.25.2,<5, grpcio<2, absl-py<2, attrs<24, six<2; grpcio
# has no protobuf requirement, so the newest works with it. waitress (pure Python, no
# dependencies) serves the grpc-web listener.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      --cert /etc/ssl/certs/ca-certificates.crt \
      ml-metadata==1.17.1 grpcio==1.85.3 protobuf==4.25.9 absl-py==1.4.0 attrs==23.2.0 \
      six==1.17.0 typing-extensions==4.16.0 waitress==3.0.2 \
 && /opt/venv/bin/pip check
# What the server does not need: pip and setuptools, the wheel's tests.
RUN /opt/venv/bin/pip uninstall -q -y pip setuptools \
 && rm -rf /opt/venv/lib/python3.11/site-packages/ml_metadata/metadata_store/*_test.py \
      /opt/venv/lib/python3.11/site-packages/ml_metadata/metadata_store/conftest.py
COPY mlmd_server.py /opt/mlmd/mlmd_server.py
# Bytecode now: the root filesystem may be read-only at run time.
RUN /opt/venv/bin/python -m compileall -q /opt/venv/lib /opt/mlmd \
 && /opt/venv/bin/python /opt/mlmd/mlmd_server.py --help >/dev/null

FROM python
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/mlmd /opt/mlmd
# The upstream image's command (the manifest sets command: ["/bin/metadata_store_server"]).
RUN printf '#!/bin/sh\nexec /opt/venv/bin/python /opt/mlmd/mlmd_server.py "$@"\n' \
      >/usr/local/bin/metadata_store_server \
 && chmod 0755 /usr/local/bin/metadata_store_server \
 && ln -s /usr/local/bin/metadata_store_server /usr/bin/metadata_store_server \
 && useradd --uid 1000 --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin mlmd
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
USER 1000:0
EXPOSE 8080 9090
ENTRYPOINT ["/bin/metadata_store_server"]
