PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# parallel pytest workers; each makes its own template databases. --dist load deals the
# first quarter of the tests round-robin: conftest puts the longest first, so they spread.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist load --durations=15

.PHONY: demo test test-quick lint typecheck unit install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/signal-mgmt migrate
	$(BIN)/signal-mgmt demo

lint: $(STAMP)
	$(BIN)/ruff check src tests migrations benchmarks
	$(BIN)/ruff format --check src tests migrations benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src tests

unit: $(STAMP)
	$(PYTEST)

test: lint typecheck unit

# the inner loop: SQLite only, no server (PostgreSQL, NATS, RabbitMQ, Redis), no slow tests
test-quick: $(STAMP)
	$(PYTEST) --no-servers -m "not slow"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
