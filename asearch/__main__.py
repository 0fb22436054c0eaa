"""``python -m asearch`` == ``asearch``."""
import sys

from asearch.cli import main

sys.exit(main())
