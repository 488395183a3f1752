"""Property tests: relabelling/permuting raters and tasks changes nothing (label order declared); a perfect
rater never hurts MV."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from service.aggregation import METHODS, AggregationInputError, krippendorff_alpha


@st.composite
def crowd(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.Series]:
    n_tasks = draw(st.integers(3, 12))
    n_workers = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_tasks)
    recs = []
    for t in range(n_tasks):
        for w in rng.choice(n_workers, rng.integers(1, n_workers + 1), replace=False):
            y = truth[t] if rng.random() < 0.7 else rng.integers(0, 3)
            recs.append((f"t{t}", f"w{w}", f"c{y}"))
    df = pd.DataFrame(recs, columns=["task", "worker", "label"])
    if df["worker"].nunique() < 2:
        df.loc[len(df)] = ["t0", "wz", "c0"]
    return df, pd.Series([f"c{z}" for z in truth], index=[f"t{t}" for t in range(n_tasks)])


@settings(max_examples=25, deadline=None)
@given(data=crowd(), perm_seed=st.integers(0, 1000), method=st.sampled_from(sorted(METHODS)))
def test_row_order_and_rater_names_do_not_matter(data: tuple[pd.DataFrame, pd.Series], perm_seed: int,
                                                  method: str) -> None:
    df, _ = data
    rng = np.random.default_rng(perm_seed)
    workers = df["worker"].unique()
    rename = dict(zip(workers, rng.permutation([f"r{i}" for i in range(len(workers))])))
    shuffled = df.sample(frac=1, random_state=perm_seed).assign(worker=lambda d: d["worker"].map(rename))
    # ties go to the label seen first in the rows (crowd-kit's rule), and Wawa's weights depend on MV's
    # tie-broken labels; with the label order declared, row order and rater names change nothing
    classes = sorted(df["label"].unique())
    a = METHODS[method](classes=classes).fit(df)
    b = METHODS[method](classes=classes).fit(shuffled)
    pa, pb = a.probas_, b.probas_.reindex(a.probas_.index)
    np.testing.assert_allclose(pa.to_numpy(), pb.to_numpy(), atol=1e-6)
    srt = np.sort(np.hstack([pa.to_numpy(), np.zeros((len(pa), 1))]), axis=1)
    clear = (srt[:, -1] - srt[:, -2]) > 1e-6
    assert (a.labels_[clear] == b.labels_.reindex(a.labels_.index)[clear]).all()
    try:
        ka = krippendorff_alpha(df)
    except AggregationInputError:
        return
    assert abs(krippendorff_alpha(shuffled) - ka) < 1e-12


@settings(max_examples=40, deadline=None)
@given(data=crowd())
def test_adding_a_perfect_rater_never_lowers_mv_accuracy(data: tuple[pd.DataFrame, pd.Series]) -> None:
    df, truth = data
    oracle = pd.DataFrame({"task": truth.index, "worker": "oracle", "label": truth.to_numpy()})
    oracle = oracle[oracle["task"].isin(df["task"])]
    before = METHODS["mv"]().fit(df).labels_
    after = METHODS["mv"]().fit(pd.concat([df, oracle], ignore_index=True)).labels_
    t = before.index
    assert (after.reindex(t) == truth.reindex(t)).mean() >= (before == truth.reindex(t)).mean()
