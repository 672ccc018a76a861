# Slim, non-root image of the gateway. Works with a read-only root filesystem: the audit spool and
# file sinks go under /var/lib/gateway (a VOLUME: mount one there to keep the spool across restarts),
# and nothing else is written.
#   docker build -t llm-gateway .
#   docker run -p 8080:8080 -e GATEWAY_ADMIN_KEY=... --read-only -v gw-data:/var/lib/gateway \
#     --stop-timeout 30 llm-gateway
# --stop-timeout (compose: stop_grace_period, deploy/docker/compose.yaml; Kubernetes:
# terminationGracePeriodSeconds) must exceed unready_before_drain_s + drain_timeout_s of the config
# (5 + 20 s here): docker's default 10 s would SIGKILL requests still draining.
#
# The image serves /etc/gateway/config.toml as it says ([server] host 0.0.0.0, port 8080; no --host or
# --port in CMD, so a mounted config's own address holds). It has no API keys: mount your keys (from
# `gateway keys create`) into /etc/gateway/policies/, or your own config. The README's demo key lives
# apart, in /etc/gateway/demo/, loaded only by the demo config, which says allow_demo_key = true:
#   docker run -p 127.0.0.1:8080:8080 -e GATEWAY_ADMIN_KEY=... llm-gateway gateway serve --config /etc/gateway/demo.toml
#
# Dependencies come from requirements/runtime.lock, by version and hash; the gateway is then installed
# alone (--no-deps). The wheel is built in a stage with a C compiler, so the injection detector's
# accelerator (gateway/guardrails/injection/_fast.c, optional) is in the image; the runtime stage has none.
#
# The base image is pinned by digest. The digest below is the one a public project records for
# python:3.11-slim-bookworm (amd64 + arm64 index); it was not pulled or checked from here (no registry
# access). Refresh, and verify, with:
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# then replace the digest below (or pass --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/gateway
ENV PATH=/opt/gateway/bin:$PATH
WORKDIR /src
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml setup.py README.md LICENSE ./
COPY gateway ./gateway
RUN pip install --no-deps --no-build-isolation .

FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/gateway/bin:$PATH
WORKDIR /app
COPY --from=build /opt/gateway /opt/gateway
RUN useradd --system --uid 10001 --home /var/lib/gateway gateway \
    && mkdir -p /var/lib/gateway && chown gateway /var/lib/gateway
COPY deploy/docker/config.toml /etc/gateway/config.toml
COPY policies/guardrails.toml /etc/gateway/policies/guardrails.toml
COPY deploy/docker/demo.toml /etc/gateway/demo.toml
COPY policies/keys.toml /etc/gateway/demo/keys.toml
VOLUME /var/lib/gateway

USER 10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status == 200 else 1)"]
CMD ["gateway", "serve", "--config", "/etc/gateway/config.toml"]
