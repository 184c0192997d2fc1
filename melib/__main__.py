import sys

from melib.cli import main

sys.exit(main())
