"""`python -m gensyn_node.cli`: the same as the `gensyn-node` console script."""

import sys

from gensyn_node.cli.dispatch import main

sys.exit(main())
