"""YAML files the tests read many times, parsed once per process.

PyYAML's safe loader is pure Python: a generated rule file takes a sixth of a second to
parse, and the unit room reads those files (and docker-compose.yml) over a hundred times.
The cache is keyed on the file's text, which is read on every call: an edited file is
parsed afresh. Every caller gets a deep copy of its own, free to change it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Any:
    return yaml.safe_load(text)


def load_yaml(path: Path) -> Any:
    """`yaml.safe_load(path.read_text())`, parsed once per distinct text."""
    return copy.deepcopy(_parsed(path.read_text()))
