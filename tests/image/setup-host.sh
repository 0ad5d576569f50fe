#!/bin/sh
# Prepares this machine for `make image-test`: the container tools and the Dockerfile's base image.
#
# 1. buildah, podman, runc and debootstrap from Debian's archive when any is missing (needs root and
#    apt-get). Where that is impossible the script says so loudly and exits 0, and the image tests
#    skip, except under CI (CI set), where it exits 1: CI never skips the image.
# 2. The base image the Dockerfile's FROM names (apache/airflow:<AIRFLOW_VERSION>-python<PYTHON_VERSION>,
#    versions read from the Dockerfile): kept when present, pulled when possible, otherwise built
#    from tests/image/standin/build.sh. Either way it stays in /var/lib/containers for the next run.
set -eu
cd "$(dirname "$0")/../.."

missing=
for tool in buildah podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "image-test: installing$missing from Debian's archive"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            buildah podman runc debootstrap uidmap >/dev/null
    elif [ -n "${CI:-}" ]; then
        echo "image-test: FAILED: missing$missing and cannot install them (needs root and apt-get)" >&2
        exit 1
    else
        echo "################################################################################" >&2
        echo "image-test: SKIPPING THE WORKER IMAGE TESTS: missing$missing and cannot install" >&2
        echo "them here (needs root and apt-get). The image is NOT tested on this machine." >&2
        echo "################################################################################" >&2
        exit 0
    fi
fi

airflow=$(sed -n 's/^ARG AIRFLOW_VERSION=//p' Dockerfile)
python=$(sed -n 's/^ARG PYTHON_VERSION=//p' Dockerfile)
base=docker.io/apache/airflow:${airflow}-python${python}
label=$(podman image inspect --format '{{index .Labels "ecs-executor.standin"}}' "$base" 2>/dev/null) || label=none
if [ "$label" = "" ] || [ "$label" = "<no value>" ]; then
    echo "image-test: using $base (present on this machine)"
    exit 0
fi
if [ "$label" = none ] && timeout 120 podman pull --quiet "$base" >/dev/null 2>&1; then
    echo "image-test: pulled $base"
    exit 0
fi
if [ "$label" = none ]; then
    echo "image-test: $base cannot be pulled here; building the stand-in (tests/image/standin/build.sh)"
fi
exec tests/image/standin/build.sh "$airflow" "$python" constraints.txt
