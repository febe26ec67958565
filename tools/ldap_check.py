"""For operators: `python -m tools.ldap_check <stack> <username>`, would the hub let this user in?

An entry point only, so the documented command stays where it was: the code is tools/preflight/ldap_check.py.
"""

import sys

from tools.preflight.ldap_check import main

if __name__ == "__main__":
    sys.exit(main())
