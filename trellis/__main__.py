"""``python -m trellis``: the same as the ``trellis`` command."""

from trellis.cli import main

raise SystemExit(main())
