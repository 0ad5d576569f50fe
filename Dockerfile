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
# Where the AWS CLI comes from (entrypoint.sh uses it for the DAG sync from S3):
#   bundle (default)  the official AWS CLI v2 bundle from awscli.amazonaws.com: self-contained (its own
#                     Python and botocore), so it cannot clash with the botocore aiobotocore pins;
#   pypi              PyPI's awscli (v1) in a virtualenv of its own, /usr/local/aws-cli, for build
#                     networks that reach a package index but not awscli.amazonaws.com.
# Either way `aws` is on PATH and must honour AWS_ENDPOINT_URL_S3, which needs CLI v2 >= 2.13.0 or
# v1 >= 1.29.0; the step below fails the build on an older one.
ARG AWS_CLI_SOURCE=bundle
# Release to install (v2 numbers for bundle, e.g. 2.27.50; v1 numbers for pypi); empty: the latest.
ARG AWS_CLI_VERSION=""

# hadolint ignore=DL3066
USER root

# pypi: the image's own pip (in Airflow's virtualenv) installs into the CLI's (pip --python), so the
# CLI's botocore stays out of Airflow's environment.
# hadolint ignore=DL3008,DL3013
RUN set -eu; \
    case "${AWS_CLI_SOURCE}" in \
    bundle) \
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
        rm -rf /tmp/aws /tmp/awscliv2.zip ;; \
    pypi) \
        python3 -m venv --without-pip /usr/local/aws-cli; \
        python3 -m pip --python /usr/local/aws-cli/bin/python install --no-cache-dir --no-warn-script-location \
            "awscli${AWS_CLI_VERSION:+==${AWS_CLI_VERSION}}"; \
        ln -s /usr/local/aws-cli/bin/aws /usr/local/bin/aws ;; \
    *) echo "ERROR: AWS_CLI_SOURCE must be bundle or pypi, not '${AWS_CLI_SOURCE}'" >&2; exit 1 ;; \
    esac; \
    version=$(aws --version 2>&1); version=${version#aws-cli/}; version=${version%% *}; \
    minor=${version#*.}; minor=${minor%%.*}; \
    case "${version}" in 1.*) need=29 ;; 2.*) need=13 ;; *) need=999 ;; esac; \
    if [ "${minor}" -lt "${need}" ]; then \
        echo "ERROR: AWS CLI ${version} ignores AWS_ENDPOINT_URL_S3; install v2 >= 2.13.0 or v1 >= 1.29.0" >&2; \
        exit 1; \
    fi; \
    echo "AWS CLI ${version} from ${AWS_CLI_SOURCE}"

COPY --chmod=0755 entrypoint.sh /opt/ecs_executor/entrypoint.sh
RUN chown airflow:0 /opt/ecs_executor && chmod 0775 /opt/ecs_executor

# The Airflow image defines the airflow user (UID 50000, group 0), so the name always resolves.
# hadolint ignore=DL3066
USER airflow

# This package, installed from the build context. Pinning apache-airflow to the base image's version
# keeps pip from swapping Airflow while it resolves the executor's dependencies.
COPY --chown=airflow:0 pyproject.toml README* LICENSE* NOTICE* /tmp/ecs_executor-src/
COPY --chown=airflow:0 ecs_executor/ /tmp/ecs_executor-src/ecs_executor/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/ecs_executor-src \
    && rm -rf /tmp/ecs_executor-src

# Where the DAGs live in the container. Declared after the installs, so images that differ only in
# their DAG settings share every layer above. Group 0 owns what the airflow user writes, like
# everywhere else in the Airflow image.
ARG container_dag_path=/opt/airflow/dags
# hadolint ignore=DL3066
USER root
RUN mkdir -p "${container_dag_path}" \
    && chown airflow:0 "${container_dag_path}" \
    && chmod 0775 "${container_dag_path}"
# hadolint ignore=DL3066
USER airflow

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
# 3. The seed's build args below, for the build-time download (c) only. Their values never reach the
#    image's environment, config or files, but every build arg used by a RUN step is recorded in the
#    image's build history (`docker history --no-trunc`), where anyone who can pull the image reads
#    it. Prefer the secret; rotate keys that were ever passed this way.
ARG aws_default_region=""
# The region is kept (it is no secret), in a file entrypoint.sh loads, and only when given: an empty
# AWS_DEFAULT_REGION would break every AWS client.
RUN set -eu; \
    file=/opt/ecs_executor/build-args.env; \
    rm -f "${file}"; \
    if [ -n "${aws_default_region}" ]; then \
        printf 'AWS_DEFAULT_REGION=%s\n' "${aws_default_region}" >"${file}"; \
        chmod 0444 "${file}"; \
    fi

# Uncomment to copy ./.aws from the build context (discouraged: the files end up in the image):
# COPY --chown=airflow:root ./.aws /home/airflow/.aws

# hadolint ignore=DL3064
ARG aws_access_key_id=""
# hadolint ignore=DL3064
ARG aws_secret_access_key=""
# hadolint ignore=DL3064
ARG aws_session_token=""
ARG s3_build_url=""
RUN --mount=type=secret,id=aws,uid=50000,gid=0,mode=0400 \
    if [ -n "${aws_access_key_id}${aws_secret_access_key}${aws_session_token}" ]; then \
        echo "WARNING: AWS credentials given as build args are recorded in this image's build history;" \
            "anyone who can pull the image can read them. Use --secret id=aws (docs/worker-image.md)." >&2; \
    fi; \
    if [ -n "${s3_build_url}" ]; then \
        if [ -f /run/secrets/aws ]; then export AWS_SHARED_CREDENTIALS_FILE=/run/secrets/aws; fi; \
        if [ -n "${aws_access_key_id}" ]; then \
            export AWS_ACCESS_KEY_ID="${aws_access_key_id}" AWS_SECRET_ACCESS_KEY="${aws_secret_access_key}"; \
            if [ -n "${aws_session_token}" ]; then export AWS_SESSION_TOKEN="${aws_session_token}"; fi; \
        fi; \
        S3_URL="${s3_build_url}" /opt/ecs_executor/entrypoint.sh true; \
    fi

# dumb-init (from the Airflow image) runs as PID 1 and forwards signals; entrypoint.sh exec's the task
# command, so `docker stop` / ECS StopTask reach it directly.
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/ecs_executor/entrypoint.sh"]
CMD ["airflow", "version"]
# hadolint ignore=DL3066
USER airflow
