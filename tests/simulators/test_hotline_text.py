"""The simulated hotline reads like citizens and keeps held-out families held out."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from simulators import Simulation, simulate
from simulators.complaints import CATEGORIES, FAMILIES, FIRST_EVAL_SEED, HELD_OUT

PHONE = re.compile(r"1[3578]\d\*{4}\d{4}")


@pytest.fixture(scope="module")
def week() -> Simulation:
    return simulate("hotline-month", seed=FIRST_EVAL_SEED + 1, duration_s=7 * 86_400)


def test_categories_include_what_the_warning_models_do_not_watch() -> None:
    assert len(CATEGORIES) >= 12
    assert {"labour", "health", "education", "housing", "traffic"} <= set(CATEGORIES)
    n_templates = sum(len(p) for f in FAMILIES.values() for p in f.what)
    assert n_templates >= 200


def test_held_out_families_never_appear_under_tuning_seeds() -> None:
    assert HELD_OUT
    assert HELD_OUT < set(FAMILIES)
    for seed in (1, 2):
        sim = simulate("hotline-month", seed=seed, duration_s=3 * 86_400)
        fams = {t.family for t in sim.tickets()}
        assert not fams & HELD_OUT
        assert len(fams) >= len(FAMILIES) - len(HELD_OUT) - 3


def test_evaluation_seeds_draw_held_out_families(week: Simulation) -> None:
    fams = Counter(t.family for t in week.tickets())
    assert set(fams) & HELD_OUT
    held = sum(n for f, n in fams.items() if f in HELD_OUT)
    assert 0.15 < held / sum(fams.values()) < 0.5


def test_texts_are_colloquial_noisy_and_sized_like_real_tickets(week: Simulation) -> None:
    tickets = week.tickets()
    lengths = [len(t.text) for t in tickets]
    assert min(lengths) >= 20
    assert max(lengths) <= 500
    assert max(lengths) > 150  # some callers tell a story
    share = lambda pred: sum(map(pred, tickets)) / len(tickets)  # noqa: E731
    assert 0.1 < share(lambda t: bool(PHONE.search(t.text))) < 0.5
    assert 0.02 < share(lambda t: "區" in t.text or "沒" in t.text or "問" in t.text) < 0.2
    assert 0.2 < share(lambda t: t.lat is None) < 0.45  # an address in words only
    assert share(lambda t: bool(t.address)) > 0.7
    assert len({t.text for t in tickets}) == len(tickets)


def test_duplicates_are_other_callers_with_other_words_for_the_same_facts(
    week: Simulation,
) -> None:
    by_id = {t.id: t for t in week.tickets()}
    clusters = [lab for lab in week.labels if lab.rule == "hotline.duplicate"]
    assert len(clusters) >= 20
    for lab in clusters:
        ts = [by_id[t] for t in lab.params["tickets"]]
        assert len({t.family for t in ts}) == 1
        assert len({t.text for t in ts}) == len(ts)
        assert len({t.caller for t in ts}) >= len(ts) - 1  # one may call twice
        assert len({t.district for t in ts}) == 1


def test_officers_dispatch_every_ticket_and_correct_some(week: Simulation) -> None:
    records = [e for e in week.events() if e.kind == "hotline"]
    intake = [e for e in records if not e.is_decision]
    decisions = [e for e in records if e.is_decision]
    truth = {t.id: t for t in week.tickets()}
    assert len(decisions) >= len(intake)
    first: dict[str, str] = {}
    corrected = 0
    for d in decisions:
        assert d.ticket in truth
        if d.dept:
            if d.ticket in first and first[d.ticket] != d.dept:
                corrected += 1
                assert d.dept == truth[d.ticket].dept  # the last word is right
            first.setdefault(d.ticket, d.dept)
    assert 0.03 < corrected / len(intake) < 0.15
    merges = [d for d in decisions if d.duplicate_of]
    splits = [d for d in decisions if d.duplicate_of == ""]
    assert merges
    assert splits
    share_cat = sum(bool(e.category) for e in intake) / len(intake)
    assert 0.5 < share_cat < 0.7  # the call-taker's category, not always there


def test_callers_make_pinyin_slips(week: Simulation) -> None:
    from simulators.complaints import HOMOPHONES

    # the slips that are never right in these texts (再/得/作/那里 also occur correctly)
    wrong = [b for a, b in HOMOPHONES if b not in ("再", "得", "作", "哪里", "反应")]
    tickets = week.tickets()
    share = sum(any(w in t.text for w in wrong) for t in tickets) / len(tickets)
    assert 0.03 < share < 0.3
    assert any("再" in t.text and "在" not in t.text for t in tickets)
