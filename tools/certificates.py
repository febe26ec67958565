"""For operators: `python -m tools.certificates <stack>`, every certificate the stack depends on and when it ends.

An entry point only, like tools/s3_check.py: the code is tools/preflight/certificates.py.
"""

import sys

from tools.preflight.certificates import main

if __name__ == "__main__":
    sys.exit(main())
