"""For maintainers: `python -m tools.settings_doc` rewrites docs/settings.md from the typed settings.

An entry point only, so the documented command stays where it was: the code is tools/offline/settings_doc.py.
"""

import sys

from tools.offline.settings_doc import main

if __name__ == "__main__":
    sys.exit(main())
