"""``python -m cortexsim``: the same as the ``cortexsim`` command."""

import sys

from cortexsim.cli import main

if __name__ == "__main__":
    sys.exit(main())
