"""One process of a citywatch cluster: ``python -m flows.worker --options JSON -i N -a ADDRS``.

``citywatch run --processes N`` starts these on this host; on several hosts start one per host
with the same ``--options`` and ``--addresses`` (``host:port;host:port;...``, the same order
everywhere) and each host's own ``--process-id``. Redis is taken from ``REDIS_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from citywatch.errors import CitywatchError
from citywatch.redisconn import wait_for
from citywatch.settings import Settings
from flows.run import RunOptions, execute


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.worker")
    p.add_argument("--options", required=True, help="RunOptions as JSON")
    p.add_argument("-i", "--process-id", type=int, required=True)
    p.add_argument("-a", "--addresses", required=True, help="host:port;host:port;...")
    p.add_argument("--config", help="TOML settings file")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.load(args.config)
    url = settings.redis_url or os.environ.get("REDIS_URL")
    if not url:
        print("flows.worker: REDIS_URL is required", file=sys.stderr)
        return 2
    try:
        wait_for(url, retries=settings.redis_retries).close()
        execute(
            RunOptions.from_json(args.options),
            settings,
            url,
            proc_id=args.process_id,
            addresses=args.addresses.split(";"),
        )
    except CitywatchError as exc:
        print(f"flows.worker {args.process_id}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
