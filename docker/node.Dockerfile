# syntax=docker/dockerfile:1
# A node: `hashhub-node run` (sync on a schedule, the match API on port 8471), its home
# (key, secret files, database, node.toml) on a volume.
#
#   docker build -f docker/node.Dockerfile -t hashhub-node .    (from the repository root)
#
# Two stages. `build` turns the sources into wheels, compiling pdqhash (no wheel of it is
# published), vpdq (against Debian's FFmpeg libraries, with cmake) and the matcher's multi-index kernel (node/multiindex_kernel.c, by the build
# hook node/kernel_build.py) with the C and C++ compilers that only this stage has; the
# hashhub wheel then carries the kernel and is specific to the platform. `runtime`
# installs the wheels into a clean Python and runs as an unprivileged user. Nothing
# secret is ever in a layer: the node's key and tokens are made at run time on the volume
# (`hashhub-node init`), and .dockerignore lets only the package sources into the build
# context.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ cmake pkg-config \
       libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev libswscale-dev \
       libswresample-dev libavfilter-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY edge ./edge
COPY follow ./follow
COPY hub ./hub
COPY node ./node
COPY audit ./audit
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[node]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="hashhub node" \
      org.opencontainers.image.description="hashhub node: verified hash lists and a match API" \
      org.opencontainers.image.licenses="Apache-2.0"
# The wheels are mounted from the build stage for this one step, so they never become a
# layer of this image (BuildKit, the default builder since Docker 23).
# ffmpeg: the FFmpeg libraries the vpdq wheel was built against, and ffprobe, which reads
# a video's duration before it is hashed.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir --no-index --find-links /wheels "hashhub[node]" \
    && groupadd --system --gid 10001 hashhub \
    && useradd --system --uid 10001 --gid hashhub --home-dir /var/lib/hashhub \
       --shell /usr/sbin/nologin hashhub \
    && install -d -o hashhub -g hashhub -m 0755 /var/lib/hashhub \
    && install -d -o hashhub -g hashhub -m 0700 /var/lib/hashhub/node
# HASHHUB_NODE_HOME is where every hashhub-node command finds the node.
ENV HASHHUB_NODE_HOME=/var/lib/hashhub/node \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/hashhub/node"]
WORKDIR /var/lib/hashhub
USER 10001:10001
EXPOSE 8471
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8471/healthz', timeout=4).status != 200)"]
CMD ["hashhub-node", "run", "--host", "0.0.0.0", "--port", "8471"]
