import sys

from tokbench.cli import main

sys.exit(main())
