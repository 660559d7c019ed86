"""Developer scripts (`make demo`); a package so tests can import the demo's pieces."""
