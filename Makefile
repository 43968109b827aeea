# Everyday commands (README.md) and image builds (docs/image.md).
#
#   make quickstart                 a venv, then the digits example trained on local files, events pretty (no Docker)
#   make test                       a venv, every image, the whole suite (Docker tests included; CI=true: mandatory)
#   make test-local                 the suite without Docker (container tests skipped, unless CI=true)
#   make test-sdk                   the plugin suites again with the real synapse-sdk (Python 3.12 venv, docs/compat.md)
#   make upstream-tests             upstream's own plugin-API tests (from its sdist) against the shim (docs/compat.md)
#   make test-sdk-image             the container tests that run plugins, again in $(SDK_IMAGE) (real-package mode)
#   make sdk-image                  the runtime image with the real synapse-sdk installed, $(SDK_IMAGE) (docs/compat.md)
#   make plugin-image PLUGIN=dir    a plugin's own image FROM $(IMAGE), its requirements from a wheelhouse (docs/compat.md)
#   make image                      air-gapped: base from Debian packages + wheelhouse + Dockerfile
#   make image BASE_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04   registry path (pulls the base; wheels for 3.12)
#   make images                     the runtime image and the S3 test server images (moto, Garage)
#   make base | wheels | s3-image | garage-image | garage | clean-images | clean
#
# Every name below can be overridden from the environment or the command line.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := images

IMAGE           ?= synapse-runtime:dev
S3_IMAGE        ?= synapse-runtime-s3:dev
GARAGE_IMAGE    ?= synapse-runtime-garage:dev
# The runtime image with the real synapse-sdk beside it (real-package mode in containers: make sdk-image).
SDK_IMAGE       ?= synapse-runtime-sdk:dev
BASE_IMAGE_NAME ?= synapse-runtime-base
DEBIAN_SUITE    ?= trixie
AIRGAP_BASE     ?= $(BASE_IMAGE_NAME):$(DEBIAN_SUITE)
# Empty: the air-gapped base. Set it to build FROM a registry image instead.
BASE_IMAGE      ?=
# Python of the air-gapped base (trixie); the registry path asks its base (scripts/build-image.sh).
AIRGAP_PYTHON   ?= 3.13

export IMAGE S3_IMAGE GARAGE_IMAGE SDK_IMAGE BASE_IMAGE_NAME DEBIAN_SUITE BASE_IMAGE

.PHONY: venv sdk-venv upstream-wheel upstream-tests test-sdk sdk-image test-sdk-image plugin-image quickstart test test-local base wheels image s3-image garage garage-image images clean-images clean print-images

VENV            ?= .venv
HOST_PYTHON     ?= python3
PYTEST_ARGS     ?=
QUICKSTART_OUT  ?= out/quickstart

# The venv is rebuilt only when pyproject.toml changes (its stamp names the extras it holds).
$(VENV)/.stamp-%: pyproject.toml
	@test -x $(VENV)/bin/python || $(HOST_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[$(subst +,$(comma),$*)]'
	@touch $@

comma := ,

venv: $(VENV)/.stamp-test+examples ## the development venv (test and examples extras)

quickstart: $(VENV)/.stamp-examples ## train the digits example on local files, events rendered for a terminal
	@rm -rf $(QUICKSTART_OUT)
	$(VENV)/bin/synapse-runtime run --plugin plugins/digits --action train \
		--params plugins/digits/params/train.yaml --output $(QUICKSTART_OUT) --pretty
	@echo "result: $(QUICKSTART_OUT)/result.json  checkpoint: $(QUICKSTART_OUT)/model.zip"

# sdk-image before the first pass: the showcase's own image (test_plugin_image.py) then reuses its layers.
test: $(VENV)/.stamp-test+examples images sdk-image upstream-wheel ## the whole suite, upstream's own tests on the shim, then the plugin suites with the real synapse-sdk (local, then in the image)
	TESTCONTAINERS_RYUK_DISABLED=true $(VENV)/bin/python -m pytest $(PYTEST_ARGS)
	$(MAKE) upstream-tests
	$(MAKE) test-sdk
	$(MAKE) test-sdk-image

# Real-package mode (docs/compat.md): the same plugin suites in a Python 3.12 venv where the real
# synapse-sdk is installed beside this project, so plugins run on upstream's own classes.  uv
# resolves the pair (pip's resolver backtracks for ever through s3fs/aiobotocore/botocore).
SDK_VERSION     ?= 2026.2.17
SDK_VENV        ?= .venv-sdk
SDK_PYTHON      ?= $(shell p="$$(pyenv prefix 3.12 2>/dev/null | head -n 1)"; \
	if [ -n "$$p" ] && [ -x "$$p/bin/python" ]; then echo "$$p/bin/python"; else command -v python3.12 || true; fi)
SDK_TESTS       ?= tests/compat tests/local tests/serve

$(SDK_VENV)/.stamp-sdk-$(SDK_VERSION): pyproject.toml
	@test -n "$(SDK_PYTHON)" || { echo "make test-sdk: needs Python 3.12 (pyenv install 3.12, or set SDK_PYTHON=/path/to/python3.12)" >&2; exit 1; }
	@test -x $(SDK_VENV)/bin/python || $(SDK_PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install -q --disable-pip-version-check uv
	$(SDK_VENV)/bin/uv pip install -q --python $(SDK_VENV)/bin/python 'synapse-sdk==$(SDK_VERSION)' -e '.[test,examples]'
	@touch $@

sdk-venv: $(SDK_VENV)/.stamp-sdk-$(SDK_VERSION) ## the Python 3.12 venv with the real synapse-sdk beside this project

# Upstream's wheel, unpacked by no one: tests render upstream's own plugin templates from it in shim mode.
upstream-wheel: build/upstream/synapse_sdk-$(SDK_VERSION)-py3-none-any.whl

build/upstream/synapse_sdk-$(SDK_VERSION)-py3-none-any.whl: $(VENV)/.stamp-test+examples
	$(VENV)/bin/python -m pip download -q --disable-pip-version-check --no-deps --python-version 3.12 \
		--only-binary=:all: 'synapse-sdk==$(SDK_VERSION)' -d build/upstream

# Upstream's own tests of the plugin API (tests/upstream/run.py has the selection), run against the shim
# with the dev venv; every one passes except those in tests/upstream/expected-failures.txt (docs/compat.md).
# They are read from upstream's sdist at test time, never copied here.  The sdists from 2026.2.15 on leave
# tests/ out (their MANIFEST.in prunes it), so the tests come from the newest sdist that ships them; make
# test-sdk runs the same selection against the real synapse-sdk==$(SDK_VERSION), which passes them all.
UPSTREAM_TESTS_VERSION ?= 2026.2.12
UPSTREAM_TESTS_SDIST   := build/upstream/synapse_sdk-$(UPSTREAM_TESTS_VERSION).tar.gz

$(UPSTREAM_TESTS_SDIST): $(VENV)/.stamp-test+examples
	$(VENV)/bin/python -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
		--python-version 3.12 'synapse-sdk==$(UPSTREAM_TESTS_VERSION)' -d build/upstream

upstream-tests: $(VENV)/.stamp-test+examples $(UPSTREAM_TESTS_SDIST) ## upstream's own plugin-API tests against the shim (docs/compat.md)
	$(VENV)/bin/python tests/upstream/run.py --sdist $(UPSTREAM_TESTS_SDIST) --mode shim

plugin-image: $(VENV)/.stamp-test+examples ## a plugin's own image: make plugin-image PLUGIN=plugins/sdk-pipeline [TAG=...]
	@test -n "$(PLUGIN)" || { echo "make plugin-image: say which plugin: PLUGIN=path/to/plugin" >&2; exit 2; }
	RUNTIME_IMAGE=$(IMAGE) PYTHON=$(VENV)/bin/python scripts/plugin-image.sh "$(PLUGIN)" $(if $(TAG),-t $(TAG))

test-sdk: sdk-venv $(UPSTREAM_TESTS_SDIST) ## the plugin suites (tests/compat, tests/local) and upstream's own tests with the real synapse-sdk installed
	TESTCONTAINERS_RYUK_DISABLED=true $(SDK_VENV)/bin/python -m pytest -m 'not docker' $(SDK_TESTS) $(PYTEST_ARGS)
	$(SDK_VENV)/bin/python tests/upstream/run.py --sdist $(UPSTREAM_TESTS_SDIST) --mode real

# Real-package mode in containers (docs/compat.md): $(SDK_IMAGE) is $(IMAGE) plus the real synapse-sdk,
# built by plugin-image.sh --deps-only from the showcase's requirements (synapse-sdk==$(SDK_VERSION)): uv
# resolves the set on the host, the wheels are downloaded into build/plugin-wheels/sdk-pipeline/ (kept
# while the requirements and the image's Python are unchanged) and installed with pip --no-index; the
# Docker layer cache skips the install while $(IMAGE) and the wheels are unchanged.
SDK_PLUGIN      ?= plugins/sdk-pipeline
# The container tests that run plugins; SYNAPSE_TEST_SDK_MODE=real points their runtime_image at
# $(SDK_IMAGE) and leaves out the shim-only ones (marker sdk_mode, each with its reason).
SDK_IMAGE_TESTS ?= tests/integration/test_sdk_mode.py tests/integration/test_contract.py \
	tests/integration/test_any_uid.py tests/integration/test_platform_container.py \
	tests/integration/test_plugin_image.py tests/integration/test_cancellation_trials.py \
	tests/integration/test_container_load.py tests/integration/test_serve_container.py

sdk-image: $(VENV)/.stamp-test+examples image ## the runtime image with the real synapse-sdk installed, $(SDK_IMAGE)
	@grep -qxF 'synapse-sdk==$(SDK_VERSION)' $(SDK_PLUGIN)/requirements.txt \
		|| { echo "make sdk-image: $(SDK_PLUGIN)/requirements.txt does not pin synapse-sdk==$(SDK_VERSION)" >&2; exit 1; }
	RUNTIME_IMAGE=$(IMAGE) PYTHON=$(VENV)/bin/python scripts/plugin-image.sh $(SDK_PLUGIN) --deps-only -t $(SDK_IMAGE)

test-sdk-image: $(VENV)/.stamp-test+examples sdk-image ## the container tests that run plugins, in $(SDK_IMAGE) (real-package mode)
	SYNAPSE_TEST_SDK_MODE=real TESTCONTAINERS_RYUK_DISABLED=true $(VENV)/bin/python -m pytest $(SDK_IMAGE_TESTS) $(PYTEST_ARGS)

test-local: $(VENV)/.stamp-test+examples ## everything that needs no Docker
	$(VENV)/bin/python -m pytest -m 'not docker' $(PYTEST_ARGS)

base: ## the air-gapped base image (cached by input hash; FORCE=1 rebuilds)
	scripts/build-base.sh

wheels: ## the wheelhouse for the image's Python (cached by requirements hash)
	WHEEL_PYTHON=$${WHEEL_PYTHON:-$(AIRGAP_PYTHON)} scripts/wheelhouse.sh deps plugins runtime

image: ## the runtime image, $(IMAGE)
	scripts/build-image.sh

s3-image: base ## moto's S3 server image, $(S3_IMAGE), from the air-gapped base
	wheelhouse="$$(WHEEL_PYTHON=$(AIRGAP_PYTHON) scripts/wheelhouse.sh moto | tail -n 1)"; \
	docker build -f docker/moto/Dockerfile \
		--build-arg BASE_IMAGE=$(AIRGAP_BASE) \
		--build-arg WHEELHOUSE="$$wheelhouse" \
		-t $(S3_IMAGE) .

garage: ## the Garage binary (scripts/garage.sh bin: $$GARAGE_BIN, ~/.cache, ../shared/tools, else cargo)
	scripts/garage.sh bin

garage-image: base ## Garage's S3 server image, $(GARAGE_IMAGE), from the air-gapped base (binary copied in, no network)
	bin="$$(scripts/garage.sh bin)"; ctx=build/garage; rm -rf $$ctx; mkdir -p $$ctx; \
	cp "$$bin" $$ctx/garage; cp scripts/garage.sh $$ctx/garage.sh; \
	docker build -f docker/garage/Dockerfile --build-arg BASE_IMAGE=$(AIRGAP_BASE) -t $(GARAGE_IMAGE) $$ctx; \
	rm -rf $$ctx

images: image s3-image garage-image ## every image the tests need

print-images: ## the image names, for scripts: KEY=VALUE lines
	@echo "IMAGE=$(IMAGE)"; echo "S3_IMAGE=$(S3_IMAGE)"; echo "GARAGE_IMAGE=$(GARAGE_IMAGE)"; echo "SDK_IMAGE=$(SDK_IMAGE)"; echo "AIRGAP_BASE=$(AIRGAP_BASE)"

clean-images: ## remove the images built here (not the base)
	-docker image rm $(SDK_IMAGE) $(IMAGE) $(S3_IMAGE) $(GARAGE_IMAGE)

clean: ## remove build outputs (wheelhouse, rootfs scratch)
	rm -rf --one-file-system build/wheelhouse build/base
