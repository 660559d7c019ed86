"""`make demo`: the whole dev stack (devstack/demo.py) until Ctrl-C or --duration."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (`python scripts/demo.py`): the repository root holds devstack/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devstack.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
