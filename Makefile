# Two commands: `make train` and `make test`. Each creates .venv and installs the locked
# dependencies on first use. ACCEL=cuda12 (NVIDIA GPU) or ACCEL=tpu installs jax for an accelerator.
# The newest Python 3.10-3.13 that runs here (3.12 and newer get jax 0.12, faster on a CPU) unless
# PYTHON is given, e.g. make venv PYTHON=python3.11.
ifndef PYTHON
PYTHON := $(or $(firstword $(foreach p,python3.13 python3.12 python3.11 python3.10,$(shell $(p) -c "import venv" >/dev/null 2>&1 && echo $(p)))),python3)
endif
VENV ?= .venv
ACCEL ?=
CONFIG ?= configs/koch.py:smoke
WORKDIR ?= runs/$(subst :,_,$(notdir $(CONFIG)))
ARGS ?=
# Offline data: the zips' folder (used only when the data set is not prepared yet).
OMNIGLOT_DIR ?= $(if $(wildcard ../shared/omniglot/images_background.zip),$(abspath ../shared/omniglot),)
export OMNIGLOT_DIR

comma := ,
EXTRAS := test$(if $(ACCEL),$(comma)$(ACCEL))
STAMP := $(VENV)/.installed$(if $(ACCEL),-$(ACCEL))
PIP_INSTALL = $(VENV)/bin/pip install --quiet -c requirements.lock

$(STAMP): pyproject.toml requirements.lock
	@test -x $(VENV)/bin/python || echo "creating $(VENV) with $(PYTHON): $$($(PYTHON) --version)"
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(PIP_INSTALL) -e '.[$(EXTRAS)]'
	touch $@

# PyTorch, for the side-by-side benchmark only.
$(VENV)/.installed-bench: $(STAMP)
	$(PIP_INSTALL) -e '.[$(EXTRAS),bench]'
	touch $@

venv: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/python -m siamese_jax.main --config=$(CONFIG) --workdir=$(WORKDIR) $(ARGS)

eval: $(STAMP)
	$(VENV)/bin/python -m siamese_jax.main --config=$(CONFIG) --workdir=$(WORKDIR) --mode=eval $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(ARGS)

# The tests not marked slow: a loop for contributors (3 min 34 s on 2 cores, against 9-14 min for all).
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Resolves pyproject.toml for Linux x86_64/aarch64 and macOS arm64, Python 3.10-3.13 (uv.lock),
# and exports it for pip (requirements.lock).
lock: $(STAMP)
	$(VENV)/bin/uv lock
	$(VENV)/bin/uv export --all-extras --no-hashes --no-emit-project -o requirements.lock

check-lock: $(STAMP)
	UV=$(VENV)/bin/uv .ci/check_lock

# Trains the :cpu preset from scratch and ships it in the package (siamese_jax/pretrained/cpu).
pretrained: $(STAMP)
	$(VENV)/bin/python -m siamese_jax.main --config=configs/koch.py:cpu --workdir=runs/pretrained_cpu
	$(VENV)/bin/python -m siamese_jax.export --workdir=runs/pretrained_cpu --out=siamese_jax/pretrained/cpu

bench-deps: $(VENV)/.installed-bench

bench: $(VENV)/.installed-bench
	$(VENV)/bin/python -m siamese_jax.tools.bench_train $(if $(OMNIGLOT_DIR),--manual_dir=$(OMNIGLOT_DIR)) $(ARGS)

.PHONY: venv train eval test test-fast lint lock check-lock pretrained bench-deps bench
