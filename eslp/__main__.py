"""Run the ``eslp`` command as ``python -m eslp``."""

from eslp.cli import main

raise SystemExit(main())
