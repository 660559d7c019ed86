"""Reference CRM app the bundle watches in tests and in `make demo`: schema, data, app, load."""
