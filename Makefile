# Every target sets itself up: a fresh Debian 12 machine, as root, needs nothing else.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := python3-venv openssl procps faketime postgresql postgresql-contrib redis-server prometheus prometheus-alertmanager jsonnet prometheus-node-exporter prometheus-blackbox-exporter kubectl victoria-metrics chromium
BENCH_PACKAGES := prometheus-postgres-exporter prometheus-redis-exporter

.PHONY: test check lint unit integration system demo bench bench-business bench-webvitals bench-drills bench-redis-scan deps venv clean rules

deps:  # apt must come before the venv: python3-venv is among the packages
	@scripts/apt-install.sh $(DEB_PACKAGES)
	@# npm rebuilds the Web Vitals snippet in its staleness test. A nodejs that ships npm
	@# (NodeSource's) conflicts with Debian's npm package: installed only when missing.
	@command -v npm >/dev/null || scripts/apt-install.sh npm

$(VENV)/.installed: pyproject.toml constraints.txt | deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,demo,dev]'
	@# The wheel holds only saasmon. The reference app, the dev stack and the tests run from
	@# this checkout: a .pth puts it on the venv's path, for every process (`python -m refapp`
	@# started from any directory), as the editable install did when refapp was packaged.
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "saasmon-checkout.pth").write_text(str(pathlib.Path.cwd()) + "\n")'
	touch $@

venv: $(VENV)/.installed

# saasmon (the exporters/ folder) is checked as the package it ships as: mypy cannot follow
# setuptools' editable finder to a renamed package, so .run/mypy/saasmon links to the folder.
MYPY_TARGETS := refapp alert_rules dashboards tests scripts bench devstack
MYPY_PATH := .run/mypy
PYTEST := $(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check .
	@mkdir -p $(MYPY_PATH) && ln -sfn ../../exporters $(MYPY_PATH)/saasmon
	MYPYPATH=$(MYPY_PATH) $(VENV)/bin/mypy $(MYPY_PATH)/saasmon $(MYPY_TARGETS)

# The test rooms (tests/unit, tests/integration, tests/system; markers of the same names).
# `check` is the everyday loop: lint and the unit room, rule/route/board tests included.
check: deps venv lint
	$(PYTEST) -q -m unit -n auto --dist loadscope --durations=10 tests/unit

unit: deps venv
	$(PYTEST) -q -m unit -n auto --dist loadscope --durations=10 tests/unit

integration: deps venv
	$(PYTEST) -v -m integration --durations=20

system: deps venv
	$(PYTEST) -v -m system --durations=20

# Everything, in one run, on every core (pytest-xdist): one worker takes the system room (the
# drills mostly wait on the clock) while the others take the unit and integration files
# (tests/support/rooms.py). -v names each test as it ends, so a long one shows in the CI log.
test: deps venv lint
	$(PYTEST) -v -n auto --dist loadscope --no-loadscope-reorder --durations=25

demo: deps venv
	$(PY) scripts/demo.py

bench: deps venv  # ~20 min: default modes, PostgreSQL at scale, then rss, redis_scan, webvitals -> bench/RESULTS.md
	@scripts/apt-install.sh $(BENCH_PACKAGES)
	$(PY) bench/bench.py --out bench/RESULTS.md

QE_VENV := .run/bench-qe-venv
# query-exporter pins its own stack (SQLAlchemy, ...): it gets a venv of its own.
$(QE_VENV)/.installed:
	python3 -m venv $(QE_VENV)
	$(QE_VENV)/bin/pip install -q query-exporter==5.0.2 psycopg2-binary
	touch $@

bench-business: deps venv $(QE_VENV)/.installed
	$(PY) bench/business_bench.py --qe-venv $(QE_VENV)

bench-webvitals: deps venv
	$(PY) bench/webvitals_bench.py

bench-drills: deps venv  # time to page of every fault drill -> bench/TIME_TO_PAGE.md
	$(PY) bench/time_to_page.py --out bench/TIME_TO_PAGE.md

bench-redis-scan: deps venv  # exact key-pattern counts at 1M keys vs redis_exporter -> bench/REDIS_SCAN.md
	@scripts/apt-install.sh prometheus-redis-exporter
	$(PY) bench/redis_scan.py --out bench/REDIS_SCAN.md

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache

rules: venv  # catalog -> alert/recording rules, promtool tests, runbooks, the Kubernetes base's copies (commit the result)
	$(PY) -m alert_rules.generator
	$(PY) -m scripts.kubernetes_base
