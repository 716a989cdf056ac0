# Two commands: `make train` and `make test`. Each creates .venv and installs the pinned
# dependencies on first use.
PYTHON ?= python3
VENV ?= .venv
CONFIG ?= configs/koch.py:smoke
WORKDIR ?= runs/$(subst :,_,$(notdir $(CONFIG)))
ARGS ?=
# Offline data: the zips' folder (used only when the data set is not prepared yet).
OMNIGLOT_DIR ?= $(if $(wildcard ../shared/omniglot/images_background.zip),$(abspath ../shared/omniglot),)
export OMNIGLOT_DIR

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[test,bench]'
	touch $@

venv: $(VENV)/.installed

train: $(VENV)/.installed
	$(VENV)/bin/python -m siamese_jax.main --config=$(CONFIG) --workdir=$(WORKDIR) $(ARGS)

eval: $(VENV)/.installed
	$(VENV)/bin/python -m siamese_jax.main --config=$(CONFIG) --workdir=$(WORKDIR) --mode=eval $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q $(ARGS)

lock:
	$(VENV)/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

bench: $(VENV)/.installed
	$(VENV)/bin/python experiments/bench_train.py $(if $(OMNIGLOT_DIR),--manual_dir=$(OMNIGLOT_DIR)) $(ARGS)

.PHONY: venv train eval test lock bench
