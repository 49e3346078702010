"""``python -m hhsym`` runs the command line."""

import sys

from hhsym.cli import main

sys.exit(main())
