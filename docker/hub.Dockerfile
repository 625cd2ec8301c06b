# syntax=docker/dockerfile:1
# The hub: `hashhub serve` on port 8470, its home (keys, database, hub.toml) on a volume.
#
#   docker build -f docker/hub.Dockerfile -t hashhub-hub .      (from the repository root)
#
# Two stages. `build` turns the sources into wheels (hashhub's and every dependency's);
# `runtime` installs those wheels into a clean Python with no compiler, no sources and no
# pip cache, and runs as an unprivileged user. Nothing secret is ever in a layer: keys,
# tokens and the database are made at run time on the volume (`hashhub init`), and
# .dockerignore lets only the package sources into the build context.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY edge ./edge
COPY follow ./follow
COPY hub ./hub
COPY node ./node
COPY audit ./audit
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="hashhub hub" \
      org.opencontainers.image.description="hashhub clearinghouse: signed, versioned hash lists" \
      org.opencontainers.image.licenses="Apache-2.0"
# The wheels are mounted from the build stage for this one step, so they never become a
# layer of this image (BuildKit, the default builder since Docker 23).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels hashhub \
    && groupadd --system --gid 10001 hashhub \
    && useradd --system --uid 10001 --gid hashhub --home-dir /var/lib/hashhub \
       --shell /usr/sbin/nologin hashhub \
    && install -d -o hashhub -g hashhub -m 0755 /var/lib/hashhub /srv/hashhub-mirror \
    && install -d -o hashhub -g hashhub -m 0700 /var/lib/hashhub/hub
# HASHHUB_HOME is where every hashhub command finds the hub; /srv/hashhub-mirror is
# where `hashhub export` writes the tree a static server or CDN serves. TZ=UTC: the
# NCMEC exchange client writes the times it asks for in local time.
ENV HASHHUB_HOME=/var/lib/hashhub/hub \
    TZ=UTC \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/hashhub/hub"]
WORKDIR /var/lib/hashhub
USER 10001:10001
EXPOSE 8470
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8470/healthz', timeout=4).status != 200)"]
CMD ["hashhub", "serve", "--host", "0.0.0.0", "--port", "8470"]
