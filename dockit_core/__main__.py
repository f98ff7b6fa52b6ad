"""`python -m dockit_core`: the `dockit` command."""

import sys

from dockit_core.cli.main import main

sys.exit(main())
