# One command per check; CI (.ci/run) calls these same targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint format fuzz bench migrate-bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python app.py

# `make test` runs everything: unit and API tests, live servers, several processes, database
# faults, fuzzing, migrations and the browser. `make test-fast` leaves out the tests marked `slow`
# (more than a few seconds each: anything that starts `python app.py`, a PostgreSQL of its own,
# Chromium or a large migration) for the inner loop; a selection left empty by it passes.
# PYTEST_ARGS narrows either, e.g. PYTEST_ARGS=tests/test_chat_messages.py.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output

# Hardening: `make test` runs a short fuzz pass; these run the long forms.
.PHONY: soak faults
FUZZ_EXAMPLES ?= 100
SOAK_MINUTES ?= 10

fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py -s --timeout=3600 $(PYTEST_ARGS)

soak: $(STAMP)
	$(BIN)/python -m bench.soak.run --minutes $(SOAK_MINUTES)

faults: $(STAMP)
	$(BIN)/python -m bench.faults.run $(FAULTS_ARGS)

# The migration's timing figure: 100k legacy conversations, 1M messages; prints rows/s.
.PHONY: bench-migration
bench-migration: $(STAMP)
	$(BIN)/python -m bench.migration.run

# The chat's figures: REST sends/s and delivery latency to WebSockets on another
# process, conversation-list latency at 10k and 1M messages. BENCH_CHAT_ARGS=--quick for a short run.
.PHONY: bench-chat
bench-chat: $(STAMP)
	$(BIN)/python -m bench.chat.run $(BENCH_CHAT_ARGS)

# POST /api/session-requests under wrk against pgbench running the same SQL; prints
# requests/s, p50, p99, non-2xx and the ratio. BENCH_ARGS e.g. --duration 30 --workers 2.
bench: $(STAMP)
	$(BIN)/python -m bench.session_requests.run $(BENCH_ARGS)

# The production topology on this machine (docs/operations.md): PgBouncer, three instances and
# nginx from deploy/'s templates, checked through nginx under a SIGKILL and a graceful restart.
# Needs Debian's nginx and pgbouncer (make deploy-deps) and PostgreSQL on 127.0.0.1:5432
# (TEST_DATABASE_URL to name another server).
.PHONY: test-deploy deploy-deps
test-deploy: $(STAMP)
	$(BIN)/python -m deploy.test_deploy $(DEPLOY_ARGS)

deploy-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light pgbouncer
