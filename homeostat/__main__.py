"""`python -m homeostat` is the same as the `homeostat` console script."""

from homeostat.operator.cli import main

raise SystemExit(main())
