"""``python -m torchspike``: the command-line application."""

import sys

from .app.cli import main

sys.exit(main())
