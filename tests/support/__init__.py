"""Test-only helpers the tests import by name: alert payloads and template renders, browser,
compose and Kubernetes checks, fixtures' building blocks, the rooms. conftest.py only declares
fixtures with them. What the drills and benches need too (processes, metric parsing,
stand-ins, polls) is part of the dev stack, devstack/, which never imports tests."""
