"""`python -m loomkin_mcp` is `loomkin-mcp`."""

import sys

from ._cli import main

sys.exit(main())
