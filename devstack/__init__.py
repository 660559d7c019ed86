"""The development stack: what tests, `make demo`, the drills and the benches start around
the exporters. Never shipped (pyproject.toml packages only `exporters` and `refapp`)."""
