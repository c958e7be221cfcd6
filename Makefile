# steelscan — one-command set-up, tests and demo.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast demo bench browser postgres clean strip-model

setup: $(STAMP)

# Reinstalls only when the pins or the package metadata change: a second run takes seconds.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Headless Chromium for the web-page test (Debian packages); without it the test skips, or fails under CI=true.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1) \
	  || echo "note: chromium not installed; the browser test will skip (and fail under CI=true)"; }

# PostgreSQL 15 server binaries for the database tests (they start their own server on a temp dir and
# port, never a shared one); skipped quietly where apt is absent (the tests then skip, or fail under CI=true).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1) \
	  || echo "note: PostgreSQL not installed; PostgreSQL tests will be skipped"; }

# Two test processes, one thread each: more threads than cores makes OpenMP spin, not work.
test: setup browser postgres
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --timeout 900 tests

test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 -m "not slow" tests

demo: setup
	$(VENV)/bin/steelscan demo

# Rebuild models/synthetic-strip (the bundle `steelscan line --simulate` uses): synthetic coils ->
# train -> tune -> bundle -> held-out scores (models/recipes/synthetic_strip.py; ~40 min on a busy 2-core CPU).
strip-model: setup
	OMP_NUM_THREADS=1 nice -n 10 $(PY) models/recipes/synthetic_strip.py --work runs/synthetic-strip

bench: setup
	$(PY) benchmarks/rle.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
