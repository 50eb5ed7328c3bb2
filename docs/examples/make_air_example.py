"""Writes air-hourly.csv: a synthetic, seeded sample in the long CSV layout `citywatch import`
reads (one row per station-hour), so the README's recorded-data tour runs without downloads.

Four made-up stations in Nantong, 21 days of hourly PM2.5/PM10 with a daily cycle, shared
weather (all stations move together) and some missing hours. Not real data: for real data see
docs/evaluation.md. Run: .venv/bin/python docs/examples/make_air_example.py
"""

import csv
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

STATIONS = [
    ("NT-Chongchuan", 32.00, 120.88),
    ("NT-Gangzha", 32.03, 120.82),
    ("NT-Tongzhou", 32.07, 121.07),
    ("NT-Haimen", 31.87, 121.18),
]
START = datetime(2026, 1, 5, tzinfo=UTC) - timedelta(hours=8)  # local midnight (+08:00)


def main() -> None:
    rng = random.Random(20261202)
    out = Path(__file__).with_name("air-hourly.csv")
    weather = 0.0
    rows = []
    for h in range(21 * 24):
        weather = 0.96 * weather + rng.gauss(0, 0.12)
        hour = (h + 8) % 24
        daily = 0.25 * math.cos(2 * math.pi * (hour - 8) / 24)
        for sid, lat, lon in STATIONS:
            if rng.random() < 0.02:
                continue  # a missing hour
            pm25 = 45 * math.exp(weather + daily + rng.gauss(0, 0.1))
            pm10 = pm25 / min(0.95, max(0.35, rng.gauss(0.6, 0.08)))
            ts = (START + timedelta(hours=h)).astimezone(UTC)
            local = ts + timedelta(hours=8)
            rows.append(
                (sid, local.strftime("%Y-%m-%d %H:%M"), round(pm25), round(pm10), lat, lon)
            )
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("station", "time", "pm25", "pm10", "lat", "lon"))
        w.writerows(rows)
    print(f"{out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
