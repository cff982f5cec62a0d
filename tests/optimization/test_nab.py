"""Held-out NAB scoring (``nab.held_out_scores``, ``nab.pooled_score``): each group of files is
scored at the threshold swept on the other groups, exactly as sweeping ``corpus_score`` on the
others and applying its threshold to the group would."""

from __future__ import annotations

import numpy as np
import pytest

from apps.optimization import nab

STD = nab.PROFILES["standard"]


def _corpus():
    rng = np.random.default_rng(5)
    truths = {
        "a/one.csv": nab.FileTruth("a/one.csv", 1000, ((500, 599),)),
        "a/two.csv": nab.FileTruth("a/two.csv", 1000, ((300, 349), (800, 899))),
        "b/three.csv": nab.FileTruth("b/three.csv", 1000, ((600, 699),)),
        "c/quiet.csv": nab.FileTruth("c/quiet.csv", 1000, ()),
    }
    scores = {name: rng.uniform(0, 0.7, 1000) for name in truths}
    scores["a/one.csv"][520] = 0.95
    scores["a/two.csv"][810] = 0.8
    scores["b/three.csv"][650] = 0.75
    scores["c/quiet.csv"][400] = 0.9  # a false positive in a file without windows
    return scores, truths


@pytest.mark.parametrize("group_of", [lambda name: name.split("/")[0], lambda name: name])
def test_each_group_is_scored_at_the_threshold_swept_on_the_others(group_of):
    scores, truths = _corpus()
    results = nab.held_out_scores(scores, truths, group_of, STD)
    assert sorted(r.group for r in results) == sorted({group_of(n) for n in truths})
    for r in results:
        train = {n: t for n, t in truths.items() if group_of(n) != r.group}
        test = {n: t for n, t in truths.items() if group_of(n) == r.group}
        swept = nab.corpus_score(scores, train, STD)
        applied = nab.corpus_score(scores, test, STD, threshold=swept.threshold)
        assert r.threshold == swept.threshold
        assert r.raw == pytest.approx(applied.raw)
        if applied.perfect > 0:
            assert r.normalised == pytest.approx(applied.normalised)
        else:
            assert r.normalised is None and r.windows == 0


def test_pooled_score_normalises_the_summed_held_out_raw_scores():
    perfect = [nab.HeldOutScore("a", 0.5, 2.0, 2, 100.0), nab.HeldOutScore("b", 0.5, 1.0, 1, 100.0)]
    assert nab.pooled_score(perfect, STD) == pytest.approx(100.0)
    missed = [nab.HeldOutScore("a", 0.5, -2.0, 2, 0.0), nab.HeldOutScore("b", 0.5, -1.0, 1, 0.0)]
    assert nab.pooled_score(missed, STD) == pytest.approx(0.0)
    # A group without windows counts only by its false positives.
    with_fp = [*perfect, nab.HeldOutScore("quiet", 0.5, -0.33, 0, None)]
    assert nab.pooled_score(with_fp, STD) == pytest.approx(100.0 * (3.0 - 0.33 + 3.0) / 6.0)
    assert nab.pooled_score([nab.HeldOutScore("quiet", 0.5, -0.11, 0, None)], STD) == 0.0
