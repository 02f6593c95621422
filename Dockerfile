# allmysms-mockserver: the AllMySMS FTP/SFTP bulk-SMS emulator in one container (contract 8).
#
#   docker build -t allmysms-mockserver .
#   docker run --rm -p 127.0.0.1:2121:2121 -p 127.0.0.1:61022:61022 -p 127.0.0.1:8021:8021 \
#     -p 127.0.0.1:60000-60099:60000-60099 -e ALLMYSMS_MOCK_SERVER_MASQUERADE_ADDRESS=127.0.0.1 \
#     -v allmysms-data:/data allmysms-mockserver
#
# BASE_IMAGE is any Debian-like image with python3 (3.11+) and its venv module: the default
# python:3.12-slim, or the local allmysms-base:bookworm made by scripts/make-base-image.sh where
# no registry is reachable. Both stages use it, so the venv copied between them stays valid.
ARG BASE_IMAGE=python:3.12-slim

# --- build: install the package and its dependencies into a self-contained venv ---------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A venv, not the system site-packages: Debian's python3 refuses `pip install` outside one
# (PEP 668) and python:3.12-slim accepts either, so one recipe fits both bases.
RUN python3 -m venv /opt/venv
WORKDIR /src
# .dockerignore lets in only what the wheel needs (pyproject.toml, README.md, mockserver/).
COPY . .
# pip byte-compiles here: at run time the venv is read-only to the service user, so without
# the .pyc files every start would compile aiohttp, asyncssh and friends again.
# The `fixtures` extra (Faker): `docker run IMAGE fixtures` works in the image.
RUN /opt/venv/bin/pip install ".[fixtures]" \
 && /opt/venv/bin/pip uninstall -y pip \
 && /opt/venv/bin/python -c "import mockserver.cli" \
 && /opt/venv/bin/allmysms-mock --help >/dev/null

# --- runtime -----------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="allmysms-mockserver" \
      org.opencontainers.image.description="Local emulator of the AllMySMS.com FTP/SFTP bulk-SMS API" \
      org.opencontainers.image.licenses="MIT"

# A fixed uid/gid so a bind-mounted /data can be prepared on the host (chown 10001:10001).
RUN groupadd --gid 10001 allmysms \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin allmysms \
 && mkdir -p /data \
 && chown 10001:10001 /data

COPY --from=build /opt/venv /opt/venv

# Bind every interface inside the container (the default 127.0.0.1 would be unreachable through
# published ports) and keep all state in the /data volume (contract 4 layout).
# The FTP passive range is fixed so it can be published 1:1; PASV replies must announce an
# address the client can reach: set ALLMYSMS_MOCK_SERVER_MASQUERADE_ADDRESS at run time
# (127.0.0.1 when the ports are published on the host's loopback, as docker-compose.yml does).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ALLMYSMS_MOCK_SERVER_HOST=0.0.0.0 \
    ALLMYSMS_MOCK_SERVER_DATA_DIR=/data \
    ALLMYSMS_MOCK_SERVER_PASSIVE_PORTS=60000-60099

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]

# FTP control, FTP passive range, SFTP, HTTP control API.
EXPOSE 2121 60000-60099 61022 8021

# `allmysms-mock healthcheck` queries GET /health (contract 6) on the HTTP port the same settings
# give `serve` (ALLMYSMS_MOCK_SERVER_HTTP_PORT, $ALLMYSMS_MOCK_CONFIG): no curl needed. A config
# passed only as `serve --config FILE` is not seen here: set ALLMYSMS_MOCK_CONFIG=FILE instead.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
  CMD ["allmysms-mock", "healthcheck", "--timeout", "4"]

# SIGTERM (docker stop) lets the file being processed finish, then exits 0 (contract 2).
STOPSIGNAL SIGTERM
ENTRYPOINT ["allmysms-mock"]
CMD ["serve"]
