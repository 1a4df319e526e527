# fleetlake daemon image: `fleetlake run` as a non-root user, state under /data.
# Build:  podman build -t fleetlake .     (or docker build)
# Run:    docker run -p 8080:8080 -v fleetlake:/data -e FLEETLAKE_TOKEN_KEY=... -e FLEETLAKE_API_TOKEN=... fleetlake
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common common
COPY connectors connectors
COPY partitions partitions
COPY geo geo
COPY ingest ingest
# python3/pip by name: the base image's interpreter may live in /usr/local/bin or /usr/bin.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM python:3.11-slim
# A fixed non-root uid, written directly: minimal bases do not all ship useradd.
RUN echo 'fleetlake:x:10001:10001:fleetlake:/data:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'fleetlake:x:10001:' >> /etc/group \
    && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY config /app/config
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FLEETLAKE_DATA_DIR=/data \
    FLEETLAKE_HTTP_HOST=0.0.0.0 \
    FLEETLAKE_HTTP_PORT=8080 \
    FLEETLAKE_FLOWS_FILE=/app/config/flows.toml
USER 10001
WORKDIR /data
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["fleetlake", "run"]
