#!/bin/sh
# Start-up script of the ecs_executor worker image (see docs/worker-image.md).
#
# The ECS executor starts one container per Airflow task instance; this script runs first and:
#   1. applies the AWS region baked into the image with the aws_default_region build arg,
#   2. checks that the image runs the scheduler's Python and Airflow versions,
#   3. syncs DAGs from S3_URL into CONTAINER_DAG_PATH when S3_URL is set,
#   4. replaces itself with the task command (exec), which therefore receives signals directly.
#
# Exit codes: 64 no command given, 66 DAG sync from S3 failed, 70 image versions could not be read,
# 78 version mismatch with the scheduler, 127 command not found; otherwise the command's own exit code
# (126 when it exists but cannot be executed). The command of a sealed workload, python -m
# ecs_executor.worker, adds 81-85 when it cannot open the envelope (docs/worker-image.md).
#
# Environment:
#   S3_URL                       s3://bucket/prefix to sync DAGs from (empty: no sync)
#   CONTAINER_DAG_PATH           where DAGs live (default: AIRFLOW__CORE__DAGS_FOLDER or /opt/airflow/dags)
#   AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL   read by the AWS CLI itself
#   ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION, ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION   set by the executor
#   ECS_EXECUTOR_SKIP_VERSION_CHECK=true    skip the version check
#   AWS_CLI (default aws), PYTHON (default python)   executables used
#   ECS_EXECUTOR_BUILD_ARGS_FILE  AWS region from the build arg (default /opt/ecs_executor/build-args.env)
#
# Secrets: this script prints versions, paths and the S3 URL only. Never add `set -x` or print the
# environment; AWS CLI error text is redacted of credential values before it is shown.
set -eu

readonly EXIT_USAGE=64 EXIT_SYNC_FAILED=66 EXIT_SOFTWARE=70 EXIT_VERSION_MISMATCH=78 EXIT_NOT_FOUND=127

AWS_CLI=${AWS_CLI:-aws}
PYTHON=${PYTHON:-python}
S3_URL=${S3_URL:-}
CONTAINER_DAG_PATH=${CONTAINER_DAG_PATH:-${AIRFLOW__CORE__DAGS_FOLDER:-/opt/airflow/dags}}
BUILD_ARGS_FILE=${ECS_EXECUTOR_BUILD_ARGS_FILE:-/opt/ecs_executor/build-args.env}

say() {
    printf 'ecs_executor: %s\n' "$*" >&2
}

die() {
    _code=$1
    shift
    say "$*"
    exit "$_code"
}

# Replace every occurrence of $2 in $1 with ***. Pure shell, so $2 never reaches another process.
# Values shorter than 8 characters are not credentials (AWS keys are 16+) and are left alone.
redact_value() {
    _text=$1
    _out=
    if [ "${#2}" -ge 8 ]; then
        while :; do
            case $_text in
                *"$2"*)
                    _out=$_out${_text%%"$2"*}'***'
                    _text=${_text#*"$2"}
                    ;;
                *) break ;;
            esac
        done
    fi
    printf '%s' "$_out$_text"
}

redact_credentials() {
    _r=$1
    _r=$(redact_value "$_r" "${AWS_SECRET_ACCESS_KEY:-}")
    _r=$(redact_value "$_r" "${AWS_SESSION_TOKEN:-}")
    _r=$(redact_value "$_r" "${AWS_ACCESS_KEY_ID:-}")
    printf '%s' "$_r"
}

# Last non-blank line of $1, without the AWS CLI's "fatal error: " prefix: the one-line reason.
last_line() {
    _last=
    while IFS= read -r _line; do
        case $_line in
            *[![:space:]]*) _last=$_line ;;
        esac
    done <<EOF
$1
EOF
    _last=${_last#fatal error: }
    printf '%s' "${_last:-no error message}"
}

# --- 1. AWS region baked in with a build arg ----------------------------------------------------
# The Dockerfile writes the aws_default_region build arg to $BUILD_ARGS_FILE when it was given (so an
# unset region never becomes an empty AWS_DEFAULT_REGION, which breaks every AWS client). The task's
# own AWS_DEFAULT_REGION wins. Credentials are never kept in the image, so none are read here.
load_build_args() {
    [ -f "$BUILD_ARGS_FILE" ] || return 0
    if [ ! -r "$BUILD_ARGS_FILE" ]; then
        say "warning: cannot read $BUILD_ARGS_FILE; ignoring the AWS region baked into the image"
        return 0
    fi
    while IFS= read -r _line || [ -n "$_line" ]; do
        case $_line in
            AWS_DEFAULT_REGION=?*)
                if [ -z "${AWS_DEFAULT_REGION:-}" ]; then
                    export "AWS_DEFAULT_REGION=${_line#*=}"
                fi
                ;;
        esac
    done <"$BUILD_ARGS_FILE"
}

# --- 2. Version check --------------------------------------------------------------------------
# One cheap interpreter start: the Airflow version comes from package metadata, falling back to
# importing airflow (slow) only when the metadata is missing.
VERSION_PROBE='
import sys
airflow_version = ""
try:
    from importlib.metadata import version
    airflow_version = version("apache-airflow-core")
except Exception:
    try:
        import airflow
        airflow_version = airflow.__version__
    except Exception:
        pass
print("%d.%d.%d" % sys.version_info[:3], airflow_version)
'

# "X.Y" of a version string, or nothing when it does not start with digits.digits.
major_minor() {
    _major=${1%%.*}
    case $1 in
        *.*) _rest=${1#*.} ;;
        *) return 0 ;;
    esac
    _minor=${_rest%%[!0-9]*}
    case $_major in '' | *[!0-9]*) return 0 ;; esac
    [ -n "$_minor" ] || return 0
    printf '%s.%s' "$_major" "$_minor"
}

# compare_versions LABEL SCHEDULER_VERSION IMAGE_VERSION BUILD_ARG HINT_VALUE
# appends to $mismatches and $hints (major.minor differs) or to $drifts (only the rest differs).
compare_versions() {
    _want_mm=$(major_minor "$2")
    if [ -z "$_want_mm" ] || [ "$_want_mm" != "$(major_minor "$3")" ]; then
        mismatches="${mismatches:+$mismatches; }scheduler runs $1 $2 but this image has $1 $3"
        if [ -n "$5" ]; then
            hints="${hints:+$hints }--build-arg $4=$5"
        fi
    elif [ "$2" != "$3" ]; then
        drifts="${drifts:+$drifts; }scheduler runs $1 $2, this image has $1 $3"
    fi
}

check_versions() {
    want_python=${ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION:-}
    want_airflow=${ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION:-}
    case ${ECS_EXECUTOR_SKIP_VERSION_CHECK:-} in
        [Tt][Rr][Uu][Ee] | 1 | [Yy][Ee][Ss]) return 0 ;;
    esac
    # Not started by the executor (or an executor that does not send versions): nothing to compare.
    [ -n "$want_python$want_airflow" ] || return 0

    image_versions=$("$PYTHON" -c "$VERSION_PROBE" 2>/dev/null) || image_versions=
    image_python=${image_versions%% *}
    image_airflow=
    case $image_versions in *" "*) image_airflow=${image_versions#* } ;; esac

    if [ -n "$want_python" ] && [ -z "$image_python" ]; then
        die "$EXIT_SOFTWARE" "version check failed: could not read the image's Python version with" \
            "'$PYTHON' (set ECS_EXECUTOR_SKIP_VERSION_CHECK=true to skip the check)"
    fi
    if [ -n "$want_airflow" ] && [ -z "$image_airflow" ]; then
        die "$EXIT_SOFTWARE" "version check failed: could not read the image's Airflow version with" \
            "'$PYTHON' (is apache-airflow installed? set ECS_EXECUTOR_SKIP_VERSION_CHECK=true to skip)"
    fi

    mismatches=
    drifts=
    hints=
    if [ -n "$want_python" ]; then
        compare_versions Python "$want_python" "$image_python" PYTHON_VERSION "$(major_minor "$want_python")"
    fi
    if [ -n "$want_airflow" ]; then
        compare_versions Airflow "$want_airflow" "$image_airflow" AIRFLOW_VERSION "$want_airflow"
    fi
    if [ -n "$mismatches" ]; then
        advice="major.minor must match${hints:+; rebuild the worker image with $hints}"
        die "$EXIT_VERSION_MISMATCH" "version mismatch: $mismatches ($advice)"
    fi
    if [ -n "$drifts" ]; then
        say "warning: version drift: $drifts (only the patch level differs; continuing)"
    fi
}

# --- 3. DAGs from S3 ---------------------------------------------------------------------------
sync_dags() {
    [ -n "$S3_URL" ] || return 0
    case $S3_URL in
        s3://*) ;;
        *://*) die "$EXIT_SYNC_FAILED" "could not sync DAGs from $S3_URL: not an s3:// URL" ;;
        *) S3_URL=s3://$S3_URL ;;
    esac
    if ! command -v "$AWS_CLI" >/dev/null 2>&1; then
        die "$EXIT_SYNC_FAILED" "could not sync DAGs from $S3_URL: AWS CLI '$AWS_CLI' not found"
    fi
    # No --delete: DAGs copied into the image at build time stay in place.
    if ! sync_errors=$("$AWS_CLI" s3 sync --only-show-errors --no-progress "$S3_URL" "$CONTAINER_DAG_PATH" 2>&1); then
        reason=$(last_line "$(redact_credentials "$sync_errors")")
        die "$EXIT_SYNC_FAILED" "could not sync DAGs from $S3_URL: $reason"
    fi
    say "synced DAGs from $S3_URL to $CONTAINER_DAG_PATH"
    dags_folder=${AIRFLOW__CORE__DAGS_FOLDER:-}
    if [ -n "$dags_folder" ] && [ "${dags_folder%/}" != "${CONTAINER_DAG_PATH%/}" ]; then
        say "warning: DAGs were synced to $CONTAINER_DAG_PATH but AIRFLOW__CORE__DAGS_FOLDER is" \
            "$dags_folder; Airflow will not find them there"
    fi
}

if [ "$#" -eq 0 ]; then
    die "$EXIT_USAGE" "no command given (the executor runs: python -m airflow.sdk.execution_time.execute_workload ...)"
fi

# A command that is not found exits 127 with a line naming it. Without this check a PATH entry the
# user cannot search (the official Airflow image puts /root/bin, mode 0700, first) makes the shell's
# exec fail with "Permission denied" and 126, which reads like a broken command.
find_command() {
    case $1 in
        */*) [ -e "$1" ] && return 0 ;;
        *) command -v "$1" >/dev/null 2>&1 && return 0 ;;
    esac
    die "$EXIT_NOT_FOUND" "command not found: $1 (PATH=$PATH)"
}

load_build_args
check_versions
sync_dags
find_command "$1"
exec "$@"
