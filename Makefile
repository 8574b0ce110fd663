# The two commands a newcomer needs (see README):
#   make demo   set everything up, then run the dashboard on a local demo workload
#   make test   set everything up, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo serve test browser bench

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Python packages (pinned in pyproject.toml) and front-end libraries (pinned in package-lock.json),
# installed again only when those files change (the stamps are in .venv and node_modules).
setup: $(VENV)/.installed node_modules/.package-lock.json

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

# Debian's Chromium for the real-browser tests (Playwright must not download its own).
browser:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

demo: setup
	$(VENV)/bin/jobdash demo

serve: setup
	$(VENV)/bin/jobdash serve

test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m bench.store_write
	$(PY) -m bench.celery_ingest
	$(PY) -m bench.celery_pages
	$(PY) -m bench.dask_ingest
	$(PY) -m bench.kafka_poll
	$(PY) -m bench.consul_watch
	$(PY) -m bench.history_query
	$(PY) -m bench.live_latency
