# The templog collector. docker-compose.yml builds and runs it; on its own:
#   docker build -t templog . &&
#   docker run -v "$PWD/config.yaml:/etc/templog/config.yaml:ro" -v templog-data:/var/lib/templog templog
# The config is mounted at /etc/templog/config.yaml, the outbox lives on the volume /var/lib/templog.

# Build stage: a wheel from the source tree, installed into a venv by the same script CI runs.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY collector/ collector/
COPY scripts/install-collector.sh scripts/
RUN scripts/install-collector.sh /opt/templog /src

# Runtime stage: the venv (without pip or setuptools) on a clean base; nothing was compiled or installed here.
# /etc/grafana/provisioning is empty: Docker gives its owner and mode to the new grafana-provisioning volume when it
# creates the one-shot (Grafana's mount of it is nocopy), so the one-shot may write it and Grafana read it.
FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 templog \
    && useradd --system --uid 10001 --gid templog --home-dir /var/lib/templog --no-create-home \
       --shell /usr/sbin/nologin templog \
    && install -d -o templog -g templog -m 0750 /var/lib/templog \
    && install -d -o templog -g templog -m 0755 /etc/grafana/provisioning
COPY --from=build /opt/templog /opt/templog
COPY scripts/render-grafana-provisioning.sh /usr/local/bin/templog-grafana-provisioning
ENV PATH=/opt/templog/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TEMPLOG_CONFIG=/etc/templog/config.yaml \
    TEMPLOG_OUTBOX=/var/lib/templog/outbox.sqlite
USER 10001:10001
WORKDIR /var/lib/templog
VOLUME ["/var/lib/templog"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=1m --retries=3 \
    CMD ["templog", "health", "-c", "/etc/templog/config.yaml"]
# -q: warnings and errors only; `templog history` and Grafana show the readings
CMD ["templog", "run", "-q", "-c", "/etc/templog/config.yaml"]
