# syntax=docker/dockerfile:1
# One Shoal process per container: `shoal node` (the default) or `shoal gateway`.
# docker-compose.yml runs both; build alone with `docker build -t shoal .`.
# Every flag can also come from SHOAL_<FLAG> in the environment; the secrets
# (SHOAL_CLUSTER_SECRET, SHOAL_GOSSIP_KEY, SHOAL_RPC_TOKEN) come only from there.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# serf is the gossip agent each node and gateway starts beside itself. Everything
# else comes as manylinux wheels (pyeclib bundles liberasurecode and ISA-L), so no
# compiler is needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends serf \
    && rm -rf /var/lib/apt/lists/*

COPY . /tmp/shoal-src
RUN pip install /tmp/shoal-src && rm -rf /tmp/shoal-src

# A fixed, unprivileged uid so volume ownership is predictable across rebuilds.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home shoal \
    && mkdir -p /data && chown shoal:shoal /data
# RocksDB, the serf snapshot and anything else a process keeps live here. Declared
# after the chown so a fresh volume starts owned by shoal.
VOLUME ["/data"]
USER shoal
WORKDIR /data

# 9000 S3 (gateway), 9100 node API, 7946 serf gossip (TCP and UDP).
EXPOSE 9000 9100 7946/tcp 7946/udp

# Healthy = the process answers HTTP below 500 on HEALTHCHECK_PORT (9100 for a node;
# the gateway sets 9000). An unauthenticated request gets 403 from a node and touches
# nothing; a stopped (SIGSTOP) process accepts TCP but never answers, so the timeout
# marks it unhealthy.
ENV HEALTHCHECK_PORT=9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import http.client as h, os, sys; c = h.HTTPConnection('127.0.0.1', int(os.environ['HEALTHCHECK_PORT']), timeout=4); c.request('GET', '/'); sys.exit(c.getresponse().status >= 500)"]

ENTRYPOINT ["shoal"]
CMD ["node"]
