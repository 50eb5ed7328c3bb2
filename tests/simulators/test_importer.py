"""``citywatch import``: small made-up CSV files in both layouts, and every way they go wrong."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from citywatch.cli import main
from citywatch.registry import Registry
from simulators.importer import ImportSpec, import_files, parse_map, parse_tz, read_stations
from simulators.recorded import real_data_dir

H = 3_600_000
#: 2014-01-01 00:00 +08:00
T0 = 1_388_505_600_000

#: Like the five-cities files: BOM, CRLF, NA, a -9999 sentinel, a bad hour, a short row.
WIDE = (
    "\ufeffNo,year,month,day,hour,season,PM_Alpha,PM_US Post,DEWP,HUMI,TEMP,cbwd\r\n"
    "1,2014,1,1,0,4,121,138,-4,64.42,2,cv\r\n"
    "2,2014,1,1,1,4,NA,159,-3,-9999,0,cv\r\n"
    "3,2014,1,1,x,4,130,150,-3,80,0,cv\r\n"
    "4,2014,1,1,3,4,125\r\n"
    "5,2014,1,1,4,4,NA,NA,-3,80,0,cv\r\n"
    "6,2014,1,1,5,4,140,abc,-3,80,0,NE\r\n"
)
#: Like the Sensor.Community files: semicolons, naive UTC ISO times, lat/lon per row.
LONG = (
    "sensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2;durP2;ratioP2\n"
    "5331;SDS011;3121;57.138;-2.077;2019-03-03T00:01:08;16.50;;;3.53;;\n"
    "7789;SDS011;3122;57.130;-2.087;2019-03-03T00:02:00;20.00;;;5.00;;\n"
    "5331;SDS011;3121;57.139;-2.077;2019-03-03T00:03:37;20.47;;;5.53;;\n"
    "5331;SDS011;3121;57.138;-2.077;2019-03-03T00:03:37;99.00;;;9.00;;\n"
    ";SDS011;3121;57.138;-2.077;2019-03-03T00:04:00;1;;;1;;\n"
    "7789;SDS011;3122;57.130;-2.087;not a time;1;;;1;;\n"
    "7789;SDS011;3122;57.130;-2.087;2019-03-03T00:04:30;abc;;;6.00;;\n"
    "5331;SDS011;3121;57.138;-2.077;2019-03-03T00:06:05;1999.90;;;197.00;;\n"
)
STATIONS = "id,lat,lon,kind\nX/Alpha,30.66,104.03,\nX/US Post,30.63,104.07,micro\n"


def _write(tmp_path: Path, name: str, text: str, *, gz: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _events(path: Path) -> list[dict[str, object]]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [orjson.loads(x) for x in data.splitlines()]


def test_wide_layout_bom_crlf_na_sentinel_and_bad_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv.gz", WIDE, gz=True)
    spec = ImportSpec(stations=read_stations(_write(tmp_path, "st.csv", STATIONS)))
    out = import_files([("X", path)], spec)
    got = [orjson.loads(r) for _, _, r in out.records]
    assert got[:3] == [
        {"kind": "air", "ts": T0, "station": "X/Alpha", "pm25": 121.0, "temp_c": 2.0, "rh": 64.42},
        {"kind": "air", "ts": T0, "station": "X/US Post", "pm25": 138.0, "temp_c": 2.0,
         "rh": 64.42},
        {"kind": "air", "ts": T0 + H, "station": "X/US Post", "pm25": 159.0, "temp_c": 0.0},
    ]  # fmt: skip
    assert got[3] == {"kind": "air", "ts": T0 + 5 * H, "station": "X/Alpha", "pm25": 140.0,
                      "temp_c": 0.0, "rh": 80.0}  # fmt: skip
    assert len(got) == 4  # "abc" is not a reading of US Post at 05:00
    s = out.stats
    assert (s.rows, s.readings, s.sentinels, s.bad_values, s.bad_rows) == (6, 4, 1, 1, 2)
    assert s.empty == 4  # Alpha at 01:00, both at 04:00 (all NA), US Post at 05:00 ("abc")
    assert s.examples == [
        "x.csv.gz line 4: time '2014,1,1,x' is not a time",
        "x.csv.gz line 5: 7 fields, the header has 12",
    ]
    alpha, post = out.registry.stations["X/Alpha"], out.registry.stations["X/US Post"]
    assert (alpha.district, alpha.kind, alpha.lat) == ("X", "national", 30.66)
    assert post.interval_s == 3600.0  # the median step between its readings
    assert post.kind == "micro"  # the stations table wins


def test_long_layout_semicolons_utc_coordinates_duplicates(tmp_path: Path) -> None:
    path = _write(tmp_path, "sds.csv", LONG)
    out = import_files([("Abd", path)], ImportSpec(tz=parse_tz("UTC"), kind="lowcost"))
    got = [orjson.loads(r) for _, _, r in out.records]
    t0 = 1_551_571_268_000  # 2019-03-03T00:01:08Z
    assert [(g["ts"] - t0, g["station"], g["pm25"], g.get("pm10")) for g in got] == [
        (0, "Abd/5331", 3.53, 16.5),
        (52_000, "Abd/7789", 5.0, 20.0),
        (149_000, "Abd/5331", 5.53, 20.47),
        (202_000, "Abd/7789", 6.0, None),
        (297_000, "Abd/5331", 197.0, 1999.9),  # a real-looking glitch is data, not dropped
    ]
    s = out.stats
    assert (s.duplicates, s.bad_rows, s.bad_values) == (1, 2, 1)
    st = out.registry.stations["Abd/5331"]
    assert (st.lat, st.lon, st.kind, st.district) == (57.138, -2.077, "lowcost", "Abd")
    assert st.interval_s == 148.0  # the median of 149 s and 148 s steps
    line = out.summary("e.jsonl.gz", "r.jsonl")
    assert line.startswith("import: 1 file(s), 8 rows -> 5 readings of 2 stations, 2019-03-03")
    assert "1 duplicates" in line
    assert "2 bad rows" in line


def test_explicit_columns_map_and_time_format(tmp_path: Path) -> None:
    text = "when|where|fine|coarse|lat|lon\n03/03/2019 08:00|S1|12|30|57.1|-2.1\n"
    path = _write(tmp_path, "odd.csv", text)
    spec = ImportSpec(
        tz=parse_tz("Europe/London"),
        time=("when",),
        time_format="%d/%m/%Y %H:%M",
        station="where",
        mapping=parse_map("fine=pm25,coarse=pm10"),
    )
    out = import_files([(None, path)], spec)
    assert [orjson.loads(r) for _, _, r in out.records] == [
        {"kind": "air", "ts": 1_551_600_000_000, "station": "S1", "pm25": 12.0, "pm10": 30.0}
    ]


def test_period_end_labels_move_back_one_interval_and_allow_hour_24(tmp_path: Path) -> None:
    text = (
        "year,month,day,hour,PM_A\n"
        "2014,1,1,1,10\n"  # the 00:00-01:00 mean, published as 01:00
        "2014,1,1,24,20\n"  # the day's last hour, 23:00-24:00
        "2014,1,1,25,30\n"  # no such hour
    )
    path = _write(tmp_path, "end.csv", text)
    where = {"X/A": {"lat": 32.0, "lon": 120.9}}
    out = import_files([("X", path)], ImportSpec(period_end=True, stations=where))
    got = [(g["ts"], g["pm25"]) for g in (orjson.loads(r) for _, _, r in out.records)]
    assert got == [(T0, 10.0), (T0 + 23 * H, 20.0)]
    assert out.stats.bad_rows == 1
    # without period_end the same file keeps its times, and hour 24 is a bad row
    plain = import_files([("X", path)], ImportSpec(stations=where))
    assert [orjson.loads(r)["ts"] for _, _, r in plain.records] == [T0 + H]
    assert plain.stats.bad_rows == 2
    # a declared interval is the period: half-hour means labelled by their end
    half = import_files(
        [("X", path)], ImportSpec(period_end=True, interval_s=1800.0, stations=where)
    )
    assert [orjson.loads(r)["ts"] for _, _, r in half.records] == [
        T0 + H // 2,
        T0 + 23 * H + H // 2,
    ]


def test_cli_writes_sorted_gzip_events_and_a_registry_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path, "a.csv", WIDE)
    st = _write(tmp_path, "st.csv", STATIONS)
    assert main(["import", f"X={a}", "--stations", str(st), "--out", str(tmp_path / "o")]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1
    assert out.startswith("import: 1 file(s), 6 rows -> 4 readings")
    assert "bad row: a.csv line 4" in err
    events = _events(tmp_path / "o" / "events.jsonl.gz")
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    reg = Registry.load(tmp_path / "o" / "registry.jsonl")
    assert set(reg.stations) == {"X/Alpha", "X/US Post"}
    before = (tmp_path / "o" / "events.jsonl.gz").read_bytes()
    assert main(["import", f"X={a}", "--stations", str(st), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "events.jsonl.gz").read_bytes() == before  # reproducible bytes


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing", r"import: '.*nope.csv' not found"),
        (
            "no_coordinates",
            r"no coordinates for station\(s\) X/Alpha, X/US Post: give them in --stations",
        ),
        ("no_layout", r"no time column"),
        ("no_pollutant", r"cannot tell the layout"),
        ("all_bad", r"no reading in 2 rows \(2 bad, 0 empty\); x.csv line 2: time"),
        ("truncated_gzip", r"unreadable"),
        ("bad_map", r"--map: 'P2=pm2' is not COLUMN=CHANNEL"),
        ("bad_tz", r"--tz: 'Mars/Base' is not UTC"),
        ("no_out", r"give --out DIR"),
        ("empty", r"empty file"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, match: str
) -> None:
    wide = _write(tmp_path, "x.csv", WIDE)
    st = str(_write(tmp_path, "st.csv", STATIONS))
    args = [f"X={wide}", "--stations", st, "--out", str(tmp_path / "o")]
    if case == "missing":
        args[0] = str(tmp_path / "nope.csv")
    elif case == "no_coordinates":
        args = [args[0], "--out", str(tmp_path / "o")]
    elif case == "no_layout":
        _write(tmp_path, "x.csv", "a,b\n1,2\n")
    elif case == "no_pollutant":
        _write(tmp_path, "x.csv", "timestamp,colour\n2019-01-01T00:00,red\n")
    elif case == "all_bad":
        _write(tmp_path, "x.csv", "timestamp,pm25\nyesterday,3\ntomorrow,4\n")
    elif case == "truncated_gzip":
        (tmp_path / "x.csv").write_bytes(gzip.compress(WIDE.encode() * 50)[:200])
    elif case == "bad_map":
        args += ["--map", "P2=pm2"]
    elif case == "bad_tz":
        args += ["--tz", "Mars/Base"]
    elif case == "no_out":
        args = args[:3]
    elif case == "empty":
        _write(tmp_path, "x.csv", "")
    assert main(["import", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("citywatch import: error: ")
    import re

    assert re.search(match, err[0]), err[0]


def test_real_five_cities_file_imports_with_the_readme_counts(tmp_path: Path) -> None:
    data = real_data_dir()
    path = data / "air" / "five-cities" / "ChengduPM20130101_20151231.csv.gz" if data else None
    if path is None or not path.is_file():
        pytest.skip("the real five-cities data is not here (set CITYWATCH_DATA)")
    stations = {
        f"Chengdu/{s}": {"lat": 30.6, "lon": 104.0} for s in ("Caotangsi", "Shahepu", "US Post")
    }
    out = import_files([("Chengdu", path)], ImportSpec(stations=stations))
    # 3 x 26,280 hours minus the NA counts of the data's README: 1,860 / 1,686 / 1,789
    assert out.stats.readings == 3 * 26_280 - (1_860 + 1_686 + 1_789)
    assert (out.stats.bad_rows, out.stats.duplicates) == (0, 0)
    flat = [
        orjson.loads(r)["pm25"]
        for ts, sid, r in out.records
        if sid == "Chengdu/Shahepu" and 1_390_766_400_000 <= ts < 1_390_766_400_000 + 57 * H
    ]
    assert flat == [292.0] * 57  # the 57-hour flat line, at its documented local time
