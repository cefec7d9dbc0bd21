# kubelab: `make up` brings up the lab, `make test` runs the whole suite.
# Both run `make setup` first, which is idempotent: Debian packages, a
# virtualenv with the project installed editable, and the generated gRPC code.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(wildcard proto/*.proto)

.PHONY: setup up down status test test-unit lint typecheck bench clean

setup: proto/.generated

$(VENV)/.debs: deploy/debian-packages.txt deploy/install-debs.sh
	deploy/install-debs.sh
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.debs
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

proto/.generated: $(PROTOS) $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. $(PROTOS)
	$(BIN)/python -m grpc_tools.protoc -I. --grpc_python_out=. proto/api.proto proto/cri.proto proto/kubelet.proto
	@touch $@

up: setup
	$(BIN)/kubelab up --apply deploy/demo/

down: setup
	$(BIN)/kubelab down

status: setup
	$(BIN)/kubelab status

test: setup lint typecheck
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q tests/unit

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy api client component_base apiserver controller_manager scheduler podnetwork clusterdns crishim kubelet proxy kubelab deploy bench

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) proto/*_pb2.py proto/*_pb2.pyi proto/*_pb2_grpc.py proto/.generated
