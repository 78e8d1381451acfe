"""``python -m fastpcap``: the command line."""

from .cli import main

raise SystemExit(main())
