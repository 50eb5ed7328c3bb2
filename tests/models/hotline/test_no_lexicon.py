"""No hand lexicon is needed for correctness: de-duplication, routing and placing learn from
the stream, the officers and the registry; the cue lexicon only serves the incident
correlator. Emptying it changes nothing the hotline model decides."""

from __future__ import annotations

import pytest

from citywatch.events import Hotline
from models.hotline import cues
from models.hotline.model import HotlineModel
from simulators import simulate


def _decisions(sim: object) -> tuple[list[tuple[str, str]], dict[str, float | int]]:
    model = HotlineModel(sim.registry)  # type: ignore[attr-defined]
    st = model.new_state("city")
    out: list[tuple[str, str]] = []
    for ev in sim.events():  # type: ignore[attr-defined]
        if isinstance(ev, Hotline):
            out += [(s.rule, s.subject.id) for s in model.update(st, ev)]
    return out, st.routing.accuracy()


def test_an_empty_lexicon_changes_no_hotline_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = simulate("hotline-month", seed=103, duration_s=2 * 86_400, anomaly_scale=2 / 30)
    with_lexicon, routing = _decisions(sim)
    assert sum(rule == "hotline.duplicate" for rule, _ in with_lexicon) >= 10
    assert routing["n"] > 100
    monkeypatch.setattr(cues, "LEXICON", {})
    monkeypatch.setattr(cues, "_INDEX", {})
    assert cues.extract_cues("化工厂排放刺鼻气味，工地夜间施工噪音") & cues.TOPIC_CUES == set()
    assert _decisions(sim) == (with_lexicon, routing)
