"""For operators: `python -m tools.s3_check <stack>`, can the stack's backups use its object store?

An entry point only, so the documented command stays where it was: the code is tools/preflight/s3_check.py.
"""

import sys

from tools.preflight.s3_check import main

if __name__ == "__main__":
    sys.exit(main())
