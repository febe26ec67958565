"""For operators: `python -m tools.site_plan <stack>`, the DNS records and firewall openings a site prepares.

An entry point only, like the other commands: the code is tools/preflight/site_plan.py.
"""

import sys

from tools.preflight.site_plan import main

if __name__ == "__main__":
    sys.exit(main())
