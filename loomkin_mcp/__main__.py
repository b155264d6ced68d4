"""`python -m loomkin_mcp` is `loomkin-mcp`."""

import sys

from .cli._main import main

# (The guard: the repo map's worker processes import this module again, and must not start a server.)
if __name__ == "__main__":
    sys.exit(main())
