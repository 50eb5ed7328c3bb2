"""Candidate generation finds the duplicates a clusterer must compare, on simulated days."""

from __future__ import annotations

from citywatch.events import Hotline
from models.hotline.model import HotlineModel
from simulators import simulate


def test_candidates_contain_almost_every_true_duplicate_pair() -> None:
    sim = simulate("hotline-month", seed=104, duration_s=4 * 86_400, anomaly_scale=4 / 30)
    truth: set[tuple[str, str]] = set()
    for lab in sim.labels:
        if lab.rule == "hotline.duplicate":
            ids = sorted(lab.params["tickets"])
            truth |= {(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]}
    assert len(truth) > 50
    model = HotlineModel(sim.registry)
    st = model.new_state("city")
    seen: set[tuple[str, str]] = set()
    compared = n = 0
    for ev in sim.events():
        if not isinstance(ev, Hotline):
            continue
        if not ev.is_decision and st.dedup.get(ev.ticket) is None:
            f, _ = model.ticket_features(st, ev, learn_df=False)
            cands = st.dedup.candidates(f)
            compared += len(cands)
            n += 1
            seen |= {(min(f.id, c.id), max(f.id, c.id)) for c in cands}
        model.update(st, ev)
    assert len(truth & seen) / len(truth) >= 0.97
    assert compared / n <= st.dedup.config.max_candidates  # bounded work per ticket
