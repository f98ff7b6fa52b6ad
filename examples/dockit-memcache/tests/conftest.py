"""Let the tests run from a checkout, installed or not: the package's root goes on sys.path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
