"""The 400M records/day benchmark as a script: ``python benchmarks/bench_city.py --help``.

Same as ``citywatch bench`` / ``make bench`` (the logic lives in ``citywatch/commands/bench.py``);
the last line of output is the JSON object the issue names.
"""

from __future__ import annotations

import sys

from citywatch.commands.bench import main

if __name__ == "__main__":
    sys.exit(main())
