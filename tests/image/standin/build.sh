#!/bin/sh
# Builds a stand-in for the official apache/airflow image, for machines that cannot pull it.
#
#   tests/image/standin/build.sh AIRFLOW_VERSION PYTHON_VERSION CONSTRAINTS_FILE
#
# The worker image (the repository's Dockerfile) starts FROM apache/airflow:<AIRFLOW>-python<PYTHON>.
# Where that image cannot be pulled (no Docker Hub), this script builds one that looks the same to the
# Dockerfile and to a task, and tags it with the exact name the FROM line uses. What it imitates:
#   - Debian bookworm (the official image's base), with curl, ca-certificates and dumb-init;
#   - user airflow, uid 50000, primary group 0, home /home/airflow; AIRFLOW_HOME=/opt/airflow with
#     dags/ and logs/, owned by airflow:0 and group-writable; WORKDIR /opt/airflow; USER 50000;
#   - Python in /usr/python/bin (links to Debian's python3; the official image builds its own);
#   - a virtualenv at /home/airflow/.local (VIRTUAL_ENV) holding apache-airflow, the amazon provider
#     and aiobotocore from PyPI, with pip upgraded like the official image does;
#   - the official PATH, /root/bin first (with its pip guard) while /root is mode 0700: the airflow
#     user cannot search it, which is what makes `exec missing-command` fail with EACCES there;
#   - ENTRYPOINT dumb-init -- /entrypoint, DUMB_INIT_SETSID=1, LANG/LC_ALL C.UTF-8,
#     AIRFLOW__CORE__LOAD_EXAMPLES=false, AIRFLOW_VERSION, AIRFLOW_UID, AIRFLOW_USER_HOME_DIR.
# It differs in what a worker does not touch: no database clients, no providers beyond amazon, and
# /entrypoint only execs its arguments (the worker image replaces the entrypoint anyway).
#
# Needs root, debootstrap and buildah. pip inside the build trusts the host's CA bundle through a
# read-only bind mount, so a TLS-inspecting proxy works and its certificate never lands in the image.
# The result carries the label ecs-executor.standin=<hash of this script and the constraints>; callers
# rebuild only when that changes. Takes about a minute and ~1 GB in /var/lib/containers.
set -eu

AIRFLOW_VERSION=${1:?usage: build.sh AIRFLOW_VERSION PYTHON_VERSION CONSTRAINTS_FILE}
PYTHON_VERSION=${2:?python version, e.g. 3.11}
CONSTRAINTS=${3:?constraints file}
TAG=docker.io/apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
RECIPE=$(cat "$0" "$CONSTRAINTS" | sha256sum | cut -c1-16)

if [ "$PYTHON_VERSION" != 3.11 ]; then
    echo "stand-in: Debian bookworm has Python 3.11 only; cannot imitate python${PYTHON_VERSION}" >&2
    exit 2
fi
if [ "$(buildah inspect --type image --format '{{index .Docker.Config.Labels "ecs-executor.standin"}}' "$TAG" 2>/dev/null)" = "$RECIPE" ]; then
    echo "stand-in: $TAG is up to date ($RECIPE)"
    exit 0
fi

work=$(mktemp -d /var/tmp/airflow-standin.XXXXXX)
ctr=
cleanup() {
    [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "stand-in: debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --include=ca-certificates,curl,dumb-init,python3,python3-venv \
    bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
}
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*

ctr=$(buildah from --isolation chroot scratch)
mnt=$(buildah mount "$ctr")
cp -a "$work/rootfs/." "$mnt/"
# The project's full constraints do not resolve on Debian's Python 3.11.2 (some pins need 3.11.5+);
# pin what the official image pins that matters to a worker: Airflow, the amazon provider, aiobotocore.
grep -E '^(apache-airflow|apache-airflow-providers-amazon|aiobotocore)==' "$CONSTRAINTS" \
    >"$mnt/tmp/constraints.txt"
buildah umount "$ctr" >/dev/null

run() {
    buildah run --isolation chroot --network host \
        --volume "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro" \
        --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --env PIP_NO_CACHE_DIR=1 \
        --env PIP_DISABLE_PIP_VERSION_CHECK=1 --env HOME=/home/airflow "$@"
}

echo "stand-in: user, folders, Python links, /root/bin guard"
run "$ctr" -- sh -eu -c '
    useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow
    mkdir -p /opt/airflow/dags /opt/airflow/logs /usr/python/bin /root/bin
    for name in python3 python; do ln -s /usr/bin/python3 "/usr/python/bin/$name"; done
    for name in python3 python; do ln -s "/usr/python/bin/$name" "/usr/local/bin/$name"; done
    printf "#!/bin/sh\necho \"Do not run pip as root in this image: switch to the airflow user.\" >&2\nexit 1\n" \
        >/root/bin/pip
    chmod 0700 /root /root/bin/pip
    printf "#!/bin/sh\nexec \"\$@\"\n" >/entrypoint
    chmod 0755 /entrypoint
'
echo "stand-in: virtualenv with apache-airflow==$AIRFLOW_VERSION from PyPI"
run --user 50000:0 "$ctr" -- sh -eu -c "
    python3 -m venv /home/airflow/.local
    /home/airflow/.local/bin/pip install -q --upgrade pip
    /home/airflow/.local/bin/pip install -q -c /tmp/constraints.txt \
        apache-airflow==$AIRFLOW_VERSION apache-airflow-providers-amazon aiobotocore
    find /home/airflow/.local -name __pycache__ -type d -prune -exec rm -rf {} +
"
run "$ctr" -- sh -eu -c '
    rm -f /tmp/constraints.txt
    chown -R airflow:0 /opt/airflow /home/airflow
    chmod -R g+rw /opt/airflow /home/airflow
'

buildah config \
    --user 50000 --workingdir /opt/airflow \
    --env "PATH=/root/bin:/home/airflow/.local/bin:/usr/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --env VIRTUAL_ENV=/home/airflow/.local --env AIRFLOW_HOME=/opt/airflow --env AIRFLOW_UID=50000 \
    --env AIRFLOW_USER_HOME_DIR=/home/airflow --env AIRFLOW_VERSION="$AIRFLOW_VERSION" \
    --env DUMB_INIT_SETSID=1 --env LANG=C.UTF-8 --env LC_ALL=C.UTF-8 --env LANGUAGE=C.UTF-8 \
    --env DEBIAN_FRONTEND=noninteractive --env AIRFLOW__CORE__LOAD_EXAMPLES=false \
    --entrypoint '["/usr/bin/dumb-init", "--", "/entrypoint"]' --cmd '[]' \
    --label "ecs-executor.standin=$RECIPE" \
    --label "org.apache.airflow.version=$AIRFLOW_VERSION" --label org.apache.airflow.uid=50000 \
    "$ctr"
buildah commit --quiet --rm --format docker "$ctr" "$TAG" >/dev/null
ctr=
echo "stand-in: built $TAG ($RECIPE)"
