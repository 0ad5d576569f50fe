# syntax=docker/dockerfile:1
# check=skip=SecretsUsedInArgOrEnv
#
# Worker image for ecs_executor: every Airflow task instance the executor launches runs in its own
# ECS task built from this image. Build it from the repository root (the build context):
#
#   docker build -t airflow-ecs-worker .
#
# BuildKit is required (the default builder since Docker 23). docs/worker-image.md covers the DAG
# loading modes, credentials, the version check and pushing to ECR.
# (The BuildKit check skipped above flags the seed's aws_* build-arg names on every build; the
# credentials step below warns only when those args are actually given.)

# Defaults are the versions the project is tested against. The scheduler's Python major.minor and
# Airflow major.minor must be the same: entrypoint.sh exits with code 78 when they differ.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11

FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
# Where the DAGs live in the container; Airflow's dags folder is set to it below.
ARG container_dag_path=/opt/airflow/dags
# AWS CLI v2 release to install, e.g. 2.27.50; empty installs the latest one.
ARG AWS_CLI_VERSION=""

# hadolint ignore=DL3066
USER root

# AWS CLI v2 is self-contained (it bundles its own Python and botocore), so it cannot clash with the
# botocore version that aiobotocore pins for the executor.
# hadolint ignore=DL3008
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends unzip; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    case "$(uname -m)" in \
        x86_64 | amd64) cli_arch=x86_64 ;; \
        aarch64 | arm64) cli_arch=aarch64 ;; \
        *) echo "ERROR: there is no AWS CLI v2 build for $(uname -m)" >&2; exit 1 ;; \
    esac; \
    curl -fsSL -o /tmp/awscliv2.zip \
        "https://awscli.amazonaws.com/awscli-exe-linux-${cli_arch}${AWS_CLI_VERSION:+-${AWS_CLI_VERSION}}.zip"; \
    unzip -q /tmp/awscliv2.zip -d /tmp; \
    /tmp/aws/install --install-dir /usr/local/aws-cli --bin-dir /usr/local/bin; \
    rm -rf /tmp/aws /tmp/awscliv2.zip; \
    aws --version

# Group 0 owns what the airflow user writes, like everywhere else in the Airflow image.
COPY --chmod=0755 entrypoint.sh /opt/ecs_executor/entrypoint.sh
RUN mkdir -p "${container_dag_path}" \
    && chown airflow:0 /opt/ecs_executor "${container_dag_path}" \
    && chmod 0775 /opt/ecs_executor "${container_dag_path}"

# The Airflow image defines the airflow user (UID 50000, group 0), so the name always resolves.
# hadolint ignore=DL3066
USER airflow

# This package, installed from the build context. Pinning apache-airflow to the base image's version
# keeps pip from swapping Airflow while it resolves the executor's dependencies.
COPY --chown=airflow:0 pyproject.toml README* LICENSE* NOTICE* /tmp/ecs_executor-src/
COPY --chown=airflow:0 ecs_executor/ /tmp/ecs_executor-src/ecs_executor/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/ecs_executor-src \
    && rm -rf /tmp/ecs_executor-src

# A non-default container_dag_path needs no manual Airflow config: the dags folder follows it.
ENV CONTAINER_DAG_PATH=${container_dag_path} \
    AIRFLOW__CORE__DAGS_FOLDER=${container_dag_path}

## Loading DAGs
# (a) Copy a folder of the build context into the image:
#       docker build --build-arg host_dag_path=./dags .
#     Nothing is copied while host_dag_path is empty; a path that is not a folder of the build context
#     (mind .dockerignore) fails the build.
# (b) Sync from S3 each time a container starts (entrypoint.sh, credentials from the ECS task role):
#       docker build --build-arg s3_url=s3://my-bucket/dags .
# (c) Download from S3 once, at build time, with credentials from a BuildKit secret that never lands
#     in the image:
#       docker build --secret id=aws,src="$HOME/.aws/credentials" --build-arg s3_build_url=s3://my-bucket/dags .
# (d) Mount a volume on container_dag_path at run time; nothing to do here.
ARG host_dag_path=""
RUN --mount=type=bind,source=.,target=/tmp/build-context \
    if [ -n "${host_dag_path}" ]; then \
        if [ ! -d "/tmp/build-context/${host_dag_path}" ]; then \
            echo "ERROR: host_dag_path=${host_dag_path} is not a folder in the build context (see .dockerignore)" >&2; \
            exit 1; \
        fi; \
        cp -R "/tmp/build-context/${host_dag_path}/." "${container_dag_path}/"; \
    fi

ARG s3_url=""
ENV S3_URL=${s3_url}

## AWS credentials, safest first (docs/worker-image.md):
# 1. The ECS task role: nothing in the image; the AWS CLI and boto3 pick it up inside the task.
# 2. BuildKit secrets for build-time access (option (c) above): visible to one RUN step only.
# 3. The seed's build args below (hadolint's DL3064 rightly flags them). DISCOURAGED: their values are stored in the image and its build
#    history, where anyone who can pull the image can read them, and they take precedence over the
#    task role. They are kept for compatibility; using them prints a warning here and at every start.
# hadolint ignore=DL3064
ARG aws_access_key_id=""
# hadolint ignore=DL3064
ARG aws_secret_access_key=""
ARG aws_default_region=""
# hadolint ignore=DL3064
ARG aws_session_token=""
# Written to a file that entrypoint.sh loads (only the args that were given, so an unset region never
# becomes an empty AWS_DEFAULT_REGION, which breaks every AWS client).
RUN set -eu; \
    file=/opt/ecs_executor/build-args.env; \
    rm -f "${file}"; \
    if [ -n "${aws_access_key_id}${aws_secret_access_key}${aws_session_token}" ]; then \
        echo "WARNING: AWS credentials given as build args are stored in this image and its build history;" \
            "anyone who can pull the image can read them. Use the ECS task role instead (docs/worker-image.md)." >&2; \
    fi; \
    for setting in "AWS_ACCESS_KEY_ID=${aws_access_key_id}" "AWS_SECRET_ACCESS_KEY=${aws_secret_access_key}" \
        "AWS_SESSION_TOKEN=${aws_session_token}" "AWS_DEFAULT_REGION=${aws_default_region}"; do \
        case "${setting}" in *=) ;; *) printf '%s\n' "${setting}" >>"${file}" ;; esac; \
    done; \
    if [ -f "${file}" ]; then chmod 0440 "${file}"; fi

# Uncomment to copy ./.aws from the build context (discouraged, like the build args: the files end up
# in the image):
# COPY --chown=airflow:root ./.aws /home/airflow/.aws

ARG s3_build_url=""
RUN --mount=type=secret,id=aws,uid=50000,gid=0,mode=0400 \
    if [ -n "${s3_build_url}" ]; then \
        if [ -f /run/secrets/aws ]; then export AWS_SHARED_CREDENTIALS_FILE=/run/secrets/aws; fi; \
        S3_URL="${s3_build_url}" /opt/ecs_executor/entrypoint.sh true; \
    fi

# dumb-init (from the Airflow image) runs as PID 1 and forwards signals; entrypoint.sh exec's the task
# command, so `docker stop` / ECS StopTask reach it directly.
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/ecs_executor/entrypoint.sh"]
CMD ["airflow", "version"]
# hadolint ignore=DL3066
USER airflow
