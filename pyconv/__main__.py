"""``python -m pyconv``: the ``pyconv`` command (see pyconv.cli)."""
import sys

from .cli import main

sys.exit(main())
