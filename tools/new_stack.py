"""For operators: `python -m tools.new_stack <example> <name>` makes a stack of one's own from an example.

An entry point only, so the documented command stays short: the code is tools/preflight/new_stack.py.
"""

import sys

from tools.preflight.new_stack import main

if __name__ == "__main__":
    sys.exit(main())
