# Every target creates what it needs itself: a fresh clone needs only python3 (>=3.10) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The AWS CLI pins botocore differently from aiobotocore, so it lives in its own venv (used by
# entrypoint.sh tests only).
AWSCLI_VENV := $(VENV)/awscli

.PHONY: install unit test lint typecheck docs pytest image-test demo bench clean postgres

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

$(AWSCLI_VENV)/.installed:
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install -q awscli
	touch $@

lint: install
	$(BIN)/ruff check ecs_executor tests $(wildcard benchmarks)
	$(BIN)/ruff format --check ecs_executor tests $(wildcard benchmarks)
	$(BIN)/cfn-lint deploy/*.yaml

typecheck: install
	$(BIN)/mypy ecs_executor

# Builds the docs in strict mode: broken internal links and anchors fail the build.
docs: install
	$(BIN)/mkdocs build --strict --quiet --site-dir $(CURDIR)/.venv/site

# PostgreSQL server binaries for the several-scheduler tests (tests/e2e/test_ha_schedulers.py) and
# `make demo ARGS=--ha`: Debian's package when none is found. The tests start their own server on a free
# port and remove it; the package's own cluster is not used.
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql)

# The pure code and the engine against its botocore-checked stub: seconds, no server, no Airflow.
unit: install
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

# tests/image needs the built worker image: `make image-test` runs it.
pytest: install $(AWSCLI_VENV)/.installed postgres
	AWSCLI_BIN=$(CURDIR)/$(AWSCLI_VENV)/bin/aws $(BIN)/pytest -q -p no:cacheprovider --ignore=tests/image

# The worker image built from the Dockerfile (buildah) and run (podman): every documented behaviour,
# and a real Airflow running task instances in it. Installs buildah/podman/runc/debootstrap when
# missing and builds a stand-in for the apache/airflow base when it cannot be pulled (kept for the
# next run, like the build's layers). Cold ~4 min, warm ~2 min.
image-test: install
	tests/image/setup-host.sh
	$(BIN)/pytest -q -p no:cacheprovider tests/image

test: lint typecheck docs pytest image-test

# `make demo ARGS="--tracking events"` tracks tasks from ECS task state change events (SQS) instead;
# `make demo ARGS=--ha` runs on PostgreSQL with two schedulers; `make demo ARGS="--image A --other-image B"`
# runs tasks in worker images with podman, two images in one DAG (docs/demo.md).
demo: install $(if $(findstring --ha,$(ARGS)),postgres)
	$(BIN)/python -m ecs_executor.demo $(ARGS)

# Full run ~30 min on 2 cores; `make bench ARGS=--quick` takes under 3 minutes.
bench: install
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
