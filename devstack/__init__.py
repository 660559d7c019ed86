"""The development stack: what tests, `make demo`, the drills and the benches start around
the exporters. Never shipped (the wheel holds only the `saasmon` package)."""
