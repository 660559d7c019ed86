# Every target sets itself up: a fresh Debian 12 machine, as root, needs nothing else.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := python3-venv openssl procps postgresql postgresql-contrib redis-server prometheus prometheus-alertmanager jsonnet
BENCH_PACKAGES := prometheus-postgres-exporter prometheus-redis-exporter

.PHONY: test lint unit demo bench deps venv clean rules

deps:  # apt must come before the venv: python3-venv is among the packages
	@scripts/apt-install.sh $(DEB_PACKAGES)

$(VENV)/.installed: pyproject.toml constraints.txt | deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy exporters refapp alert_rules tests scripts bench

unit: deps venv
	$(VENV)/bin/pytest -q

test: deps venv lint unit

demo: deps venv
	$(PY) scripts/demo.py

bench: deps venv
	@scripts/apt-install.sh $(BENCH_PACKAGES)
	$(PY) bench/bench.py --out bench/RESULTS.md

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache

rules: venv  # catalog -> alert/recording rules, promtool tests, runbooks (commit the result)
	$(PY) -m alert_rules.generator
