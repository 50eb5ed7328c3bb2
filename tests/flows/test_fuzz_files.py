"""Fuzzing the file readers (bounded: ``benchmarks/fuzz.py`` runs the long profile).

JSON Lines files as feeds write them (CRLF, blank lines, a BOM, no final line break, line
breaks inside records, gzip cut short) read through a source partition as the flow reads
them: nothing escapes, every line is one valid event or one dead letter with a reason, and a
gzip cut short hands out a prefix and says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.flows.test_city_units import toy_router
from tests.fuzzing import FileCase, check_file, file_contents

ROUTER = toy_router(progress_ms=None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_contents())
def test_files_as_feeds_write_them(case: FileCase) -> None:
    with tempfile.TemporaryDirectory() as d:
        assert check_file(case, Path(d), ROUTER) == []
