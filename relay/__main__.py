"""``python -m relay`` runs the relay's command line."""

import sys

from .cli import main

sys.exit(main())
