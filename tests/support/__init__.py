"""Helpers the tests, the drills and the benches import by name: server processes, metric
parsing, stand-ins, fixtures' building blocks. conftest.py only declares fixtures with them."""
