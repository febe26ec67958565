"""For operators: `python -m tools.restore plan <stack>` writes the restore plan of a lost cluster.

An entry point only: the code is tools/dr/command.py (the planner itself is tools/dr/restore.py).
"""

import sys

from tools.dr.command import main

if __name__ == "__main__":
    sys.exit(main())
