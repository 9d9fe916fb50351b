"""``python -m archsearch`` runs the command line."""

import sys

from archsearch.cli.main import main

sys.exit(main())
