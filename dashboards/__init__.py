"""The boards' Python side: `python -m dashboards.lint` checks the generated JSON (a
development tool, not shipped: the wheel holds only the `saasmon` package)."""
