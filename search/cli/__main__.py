"""``python -m search.cli``: the same as the ``trellis`` command."""

from search.cli import main

raise SystemExit(main())
