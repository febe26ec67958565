"""For maintainers: `python -m tools.charts vendor <chart> --git-dir DIR` (re)vendors a Helm chart.

An entry point only, so the documented command stays where it was: the code is tools/offline/charts.py.
"""

import sys

from tools.offline.charts import main

if __name__ == "__main__":
    sys.exit(main())
