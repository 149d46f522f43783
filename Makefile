# `make run` and `make test` do all set-up on a fresh Debian machine (as root, or with sudo for apt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# chromium: tests/test_report_html.py opens the report's page in it (tests/chromium.py)
APT_PACKAGES := influxdb victoria-metrics mosquitto systemd openssl shellcheck strace time chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

FLUX_CHECK := tests/flux_check

.PHONY: run test lint venv servers node clean secrets

$(BIN)/templog: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,report]'
	touch $@

venv: $(BIN)/templog

run: venv
	$(BIN)/templog run -c config.yaml

# Debian packages for the real servers the tests start (InfluxDB 1.x, VictoriaMetrics, Mosquitto), and the browser.
servers:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

# Node.js runs InfluxData's own Flux parser and type checker (npm @influxdata/flux-lsp-browser) for tests/test_flux.py.
node:
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; }
	npm ci --prefix $(FLUX_CHECK) --no-audit --no-fund --loglevel=error

# Lint and type checks (configured in pyproject.toml) run first, as their own step: their findings print as
# file:line lines, not inside a test's failure, and `make lint` runs them alone in seconds.
CHECKED := collector bench tests

lint: venv
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/mypy $(CHECKED)

test: venv servers node lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Random passwords and the InfluxDB admin token for docker compose, into secrets/ (kept if present)
secrets:
	scripts/make-secrets.sh

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (bench/, results in BENCHMARKS.md): each starts its own servers on loopback and prints PASS/MISS.
.PHONY: bench bench-drain bench-append bench-footprint bench-footprint-1000 bench-ticks bench-overhead bench-history bench-startup bench-disk bench-downsample-v3 bench-report-charting bench-report bench-report-outbox

bench-drain: venv servers
	$(BIN)/python bench/drain_throughput.py

bench-append: venv servers
	$(BIN)/python bench/outbox_append.py

bench-footprint: venv servers
	$(BIN)/python bench/footprint.py

bench-footprint-1000: venv servers
	$(BIN)/python bench/footprint.py --sensors 1000

bench-ticks: venv servers
	$(BIN)/python bench/tick_precision.py

bench-overhead: venv servers
	$(BIN)/python bench/overhead_vs_client.py

bench-history: venv servers
	$(BIN)/python bench/history_memory.py

bench-startup: venv servers
	$(BIN)/python bench/startup.py

bench-disk: venv servers
	$(BIN)/python bench/disk_writes.py

bench-downsample-v3: venv
	$(BIN)/python bench/downsample_v3.py

# leather, pygal, matplotlib, plotly: each installed from PyPI into a scratch venv under /tmp, not into .venv
bench-report-charting: venv
	$(BIN)/python bench/report_charting.py

# a year of 10-second readings of 2 sensors written into influxd first (about 2 minutes), then report vs history
bench-report: venv servers
	$(BIN)/python bench/report_year.py

# 90 days of 10-second readings of 2 sensors written into an outbox (seconds), then report from it, 3 runs
# ($(BIN)/python bench/report_outbox.py --before main: main's report beside it; --days 365: a year)
bench-report-outbox: venv
	$(BIN)/python bench/report_outbox.py

bench: bench-drain bench-append bench-footprint bench-footprint-1000 bench-ticks bench-overhead bench-history bench-startup bench-disk bench-downsample-v3 bench-report-charting bench-report bench-report-outbox
