# synapse-runtime: runs one Synapse plugin action per container (docs/image.md; the container contract).
#
# Two ways to build, one Dockerfile:
#   registry path    make image BASE_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04
#                    (= docker build --build-arg BASE_IMAGE=... --build-arg WHEELHOUSE=build/wheelhouse/py3.12 .)
#   air-gapped path  make image      (BASE_IMAGE is a Debian base made by scripts/build-base.sh, no registry)
# Either way every Python package comes from the wheelhouse (scripts/wheelhouse.sh): no index is reached.
#
# Written for the legacy builder: no RUN --mount, no heredocs, no COPY --link. On that builder each
# instruction after a cache miss costs a container commit (seconds on fuse-overlayfs), so what changes
# with the code (the `code` stage and the last COPY) comes last and is as few instructions as possible.

ARG BASE_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------------------
# python-base: the base plus Python >= 3.12, venv and tini. The air-gapped base has them already and this
# step installs nothing there; NVIDIA's CUDA runtime images have no Python, so it apt-installs them
# (registry path: needs the distribution's package mirror).
FROM ${BASE_IMAGE} AS python-base
RUN set -eu; \
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1 \
       || ! command -v tini >/dev/null 2>&1; then \
        export DEBIAN_FRONTEND=noninteractive; \
        apt-get update; \
        apt-get install -y --no-install-recommends python3 python3-venv tini ca-certificates; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
               /usr/share/doc/* /usr/share/man/*; \
    fi; \
    python3 -c 'import sys; assert sys.version_info >= (3, 12), "Python >= 3.12 needed, base has " + sys.version'

# ---------------------------------------------------------------------------------------------------------
# deps: a venv with the runtime's dependencies, then the example plugins' requirements, from the wheelhouse.
# Nothing here depends on the runtime's code: a code change reuses this stage whole.
FROM python-base AS deps
ARG WHEELHOUSE=build/wheelhouse/py3.13
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1 PIP_ROOT_USER_ACTION=ignore
COPY ${WHEELHOUSE}/deps/ /wheels/deps/
RUN python3 -m venv /opt/synapse/venv \
    && /opt/synapse/venv/bin/pip install --find-links /wheels/deps -r /wheels/deps/requirements.txt
COPY ${WHEELHOUSE}/plugins/ /wheels/plugins/
# Test suites of installed packages (numpy, scipy, scikit-learn: about 60 MB) are never imported: dropped.
RUN set -eu; \
    if grep -qvE '^[[:space:]]*(#|$)' /wheels/plugins/requirements.txt; then \
        /opt/synapse/venv/bin/pip install --find-links /wheels/deps --find-links /wheels/plugins \
            -r /wheels/plugins/requirements.txt; \
    fi; \
    find /opt/synapse/venv/lib/python3*/site-packages -mindepth 2 -maxdepth 6 -type d -name tests \
        ! -path '*/pip/*' -prune -exec rm -rf {} +; \
    /opt/synapse/venv/bin/pip check

# ---------------------------------------------------------------------------------------------------------
# code: the runtime (from its wheel), the entrypoint and the example plugins, laid out under /stage exactly
# as they go into the image, byte-compiled, and checked to import against the deps stage's venv.
FROM deps AS code
ARG WHEELHOUSE=build/wheelhouse/py3.13
COPY ${WHEELHOUSE}/runtime/ entrypoint.py /src/
COPY plugins/ /stage/opt/synapse/plugins/
RUN set -eu; \
    purelib="$(/opt/synapse/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    /opt/synapse/venv/bin/pip install --no-deps --no-compile --target "/stage$purelib" /src/*.whl; \
    mkdir -p /stage/opt/synapse/venv/bin; \
    if [ -d "/stage$purelib/bin" ]; then mv "/stage$purelib/bin/"* /stage/opt/synapse/venv/bin/; \
        rmdir "/stage$purelib/bin"; fi; \
    cp /src/entrypoint.py /stage/opt/synapse/entrypoint.py; \
    /opt/synapse/venv/bin/python -m compileall -q -j 0 -s /stage -p / /stage/opt/synapse; \
    cd /; PYTHONPATH="/stage$purelib" /opt/synapse/venv/bin/python -c 'import synapse_runtime.cli'; \
    PYTHONPATH="/stage$purelib" /opt/synapse/venv/bin/pip check

# ---------------------------------------------------------------------------------------------------------
# The image.
FROM python-base

ENV VIRTUAL_ENV=/opt/synapse/venv \
    PATH=/opt/synapse/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HOME=/tmp

# The default non-root user (numeric, so Kubernetes' runAsNonRoot can check it) and the two writable places.
# The image runs under ANY uid as well: `docker run --user "$(id -u):$(id -g)"` (files in a bind-mounted
# output stay the caller's) and OpenShift's arbitrary uids (gid 0). So the writable places are group 0 and
# writable by all: nothing in the image looks the user up, and HOME is /tmp.
# /mnt/synapse (params, env files) and /plugin are mount points for read-only inputs.
RUN set -eu; \
    groupadd --system --gid 10001 synapse; \
    useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin synapse; \
    mkdir -p /mnt/output /var/cache/synapse /mnt/synapse /opt/synapse/plugins; \
    chown 10001:0 /mnt/output /var/cache/synapse; \
    chmod 0777 /mnt/output /var/cache/synapse

COPY --from=deps /opt/synapse/venv /opt/synapse/venv

# Declared after the chown above, so fresh (anonymous or named) volumes start owned by the user.
VOLUME ["/mnt/output", "/var/cache/synapse"]
USER 10001:10001
WORKDIR /opt/synapse
STOPSIGNAL SIGTERM
# tini is PID 1: it forwards signals to the runtime and reaps zombies left by plugin subprocesses.
ENTRYPOINT ["tini", "--", "/opt/synapse/venv/bin/python", "/opt/synapse/entrypoint.py"]
CMD []

ARG BASE_IMAGE
ARG VERSION=0.0.0 REVISION=unknown CREATED=
LABEL org.opencontainers.image.title="synapse-runtime" \
      org.opencontainers.image.description="Runs Synapse plugin actions in containers: JSON-lines events, verified S3 checkpoints, documented exit codes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.documentation="docs/image.md" \
      io.synapse.runtime.contract="v1" \
      io.synapse.runtime.plugins-dir="/opt/synapse/plugins"

# Last and in one instruction: the runtime, the entrypoint and the plugins (root-owned, read-only to the user).
COPY --from=code /stage/ /
