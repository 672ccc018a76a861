# Slim, non-root image of the gateway. Works with a read-only root filesystem: the audit spool and
# file sinks go under /var/lib/gateway (mount a volume there), and nothing else is written.
#   docker build -t llm-gateway .
#   docker run -p 8080:8080 -e GATEWAY_ADMIN_KEY=... --read-only -v gw-data:/var/lib/gateway llm-gateway
# The wheel is built in a stage with a C compiler, so the injection detector's accelerator
# (gateway/guardrails/injection/_fast.c, optional) is in the image; the runtime stage has no compiler.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY gateway ./gateway
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels && useradd --system --uid 10001 --home /var/lib/gateway gateway \
    && mkdir -p /var/lib/gateway && chown gateway /var/lib/gateway
COPY deploy/docker/config.toml /etc/gateway/config.toml
COPY policies /etc/gateway/policies

USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status == 200 else 1)"]
CMD ["gateway", "serve", "--config", "/etc/gateway/config.toml", "--host", "0.0.0.0", "--port", "8080"]
