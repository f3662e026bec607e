"""`python -m benchmarks.loadtest`: see `benchmarks.loadtest.run`."""
import sys

from benchmarks.loadtest.run import main

sys.exit(main())
