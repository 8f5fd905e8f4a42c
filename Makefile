# make setup: .venv with everything (idempotent); make run: the study on the embedded default; make test: pytest.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# Without a GPU (no nvidia-smi), model jobs need not queue for one: profiles/cpu runs them side by side, one core each
# (timing jobs still run alone). Same outputs; measured 6 min 5 s against 7 min 24 s (README, Performance).
CPU_PROFILE ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,--workflow-profile profiles/cpu)
# torch 2.13.0 is a CPU build that pip finds on the build machines' disk; elsewhere it comes from PyPI.
TORCH ?= torch==2.13.0

.PHONY: setup run test lint dryrun report clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" || $(BIN)/python -m pip install -q "torch>=2.4,<3"
	$(BIN)/python -m pip install -q -e ".[cpu,dev]"
	touch $(STAMP)

run: setup
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES) --resources gpu=1 $(CPU_PROFILE)

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -rs --durations=25 -n auto --dist loadgroup

lint: setup
	$(BIN)/ruff check src workflow tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

dryrun: setup
	$(BIN)/snakemake -n --configfile config/msmarco.yaml

report: setup
	$(BIN)/snakemake --report results/report.html

clean:
	rm -rf results logs benchmarks .snakemake
