"""For operators: `python -m tools.try_hub <stack>` runs the stack's hub settings locally before `pulumi up`.

An entry point only, so the documented command stays where it was: the code is tools/preflight/try_hub.py.
"""

import sys

from tools.preflight.try_hub import main

if __name__ == "__main__":
    sys.exit(main())
