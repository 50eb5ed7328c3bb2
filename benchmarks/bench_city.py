"""The 400M records/day benchmark as a script: ``python benchmarks/bench_city.py --help``.

Same as ``citywatch bench`` / ``make bench`` (the logic lives in ``citywatch/commands/bench.py``);
the last line of output is the same JSON object (keys ``records_per_s_1p``, ``records_per_s_2p``,
``floor_records_per_s``, ``ratio_to_floor``, ``x_400m_per_day``, ``peak_rss_mb``).
"""

from __future__ import annotations

import sys

from citywatch.commands.bench import main

if __name__ == "__main__":
    sys.exit(main())
