"""``python -m villagesim``: the same as the ``villagesim`` command."""

import sys

from villagesim.cli import main

sys.exit(main())
