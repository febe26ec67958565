"""For reviewers: `python -m tools.preview <stack>`, the offline preview of a stack.

An entry point only, so the documented command stays where it was: the code is tools/offline/preview.py.
"""

import sys

from tools.offline.preview import main

if __name__ == "__main__":
    sys.exit(main())
