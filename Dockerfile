# timeman-poller in a container. Build: docker build -t timeman-poller .
# Run it with compose.yaml (PostgreSQL, Prometheus, Grafana), or alone:
#   docker run -v ./config.toml:/etc/timeman-poller/config.toml:ro -v timeman-state:/var/lib/timeman-poller timeman-poller
# The config is read from /etc/timeman-poller/config.toml ($TIMEMAN_POLLER_CONFIG); secrets come from
# the environment through ${NAME} in it. The working directory /var/lib/timeman-poller (a volume)
# holds the default SQLite database (sqlite:///timeman.sqlite3) and the spool (timeman-spool.jsonl).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid/gid (10001), so that USER is numeric and a host or Kubernetes can check it is not root.
RUN groupadd --system --gid 10001 timeman-poller \
    && useradd --system --uid 10001 --gid timeman-poller --home-dir /var/lib/timeman-poller --no-create-home \
        --shell /usr/sbin/nologin timeman-poller \
    && install -d -o timeman-poller -g timeman-poller -m 0750 /var/lib/timeman-poller \
    && install -d -m 0755 /etc/timeman-poller

WORKDIR /usr/src/timeman-poller
COPY pyproject.toml README.md ./
COPY migrations/ migrations/
COPY poller/ poller/
RUN pip install --no-cache-dir .

USER 10001:10001
WORKDIR /var/lib/timeman-poller
VOLUME ["/var/lib/timeman-poller"]
ENV TIMEMAN_POLLER_CONFIG=/etc/timeman-poller/config.toml \
    TIMEMAN_POLLER_HEALTHZ_URL=http://127.0.0.1:9464/healthz
# Prometheus /metrics and /healthz, when the config sets [metrics] port = 9464 and host = "0.0.0.0".
EXPOSE 9464
# slim has no curl: ask /healthz with Python. A 503 (a portal with no successful cycle for
# healthz_max_age_seconds) or no answer makes the check fail.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['TIMEMAN_POLLER_HEALTHZ_URL'], timeout=5)"]

ENTRYPOINT ["timeman-poller"]
CMD ["run"]
