"""Hand-sized cases with hand-computed answers for every categorical method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from service.aggregation import (
    GLAD,
    MACE,
    METHODS,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    Wawa,
)

from .conftest import rows

ALL = sorted(METHODS)


@pytest.mark.parametrize("name", ALL)
def test_every_method_recovers_the_clear_majority(name: str, small: pd.DataFrame) -> None:
    model = METHODS[name]().fit(small)
    expected = pd.Series(["a", "b", "a"], index=pd.Index(["t1", "t2", "t3"], name="task"), name="label")
    assert_series_equal(model.labels_, expected)
    assert list(model.probas_.columns) == ["a", "b"]
    np.testing.assert_allclose(model.probas_.sum(axis=1), 1.0)
    assert model.skills_.index.name == "worker"
    assert model.skills_["w1"] > model.skills_["w3"]


@pytest.mark.parametrize("name", ALL)
def test_fit_returns_self_and_fit_predict_names_the_series(name: str, small: pd.DataFrame) -> None:
    model = METHODS[name]()
    assert model.fit(small) is model
    assert model.fit_predict(small).name == "label"


def test_majority_vote_by_hand(small: pd.DataFrame) -> None:
    mv = MajorityVote().fit(small)
    expected = pd.DataFrame(
        [[2 / 3, 1 / 3], [1 / 3, 2 / 3], [2 / 3, 1 / 3]],
        index=pd.Index(["t1", "t2", "t3"], name="task"), columns=pd.Index(["a", "b"], name="label"),
    )
    assert_frame_equal(mv.probas_, expected)
    assert_series_equal(mv.skills_, pd.Series([1.0, 1.0, 0.0], index=pd.Index(["w1", "w2", "w3"], name="worker"),
                                              name="skill"))


def test_ties_go_to_the_first_label_seen_in_the_rows_or_declared_order() -> None:
    # crowd-kit's rule: its idxmax runs over the labels in first-seen order. Outputs stay sorted.
    df = rows(("t", "w1", "b"), ("t", "w2", "a"), ("u", "w1", "a"), ("u", "w2", "b"), ("u", "w3", "c"))
    mv = MajorityVote().fit(df)
    assert mv.labels_.to_dict() == {"t": "b", "u": "b"}  # u: a, b, c tie; "b" was seen first in the rows
    assert list(mv.probas_.columns) == ["a", "b", "c"]
    assert MajorityVote().fit_predict(df.iloc[::-1])["u"] == "c"  # reversed rows: "c" is seen first
    assert MajorityVote(classes=["c", "a", "b"]).fit_predict(df).to_dict() == {"t": "a", "u": "c"}


@pytest.mark.parametrize("name", ALL)
def test_every_method_breaks_an_exact_tie_by_first_seen_label(name: str) -> None:
    # two raters, two tasks, fully symmetric: every deterministic method is exactly indifferent on both tasks
    df = rows(("t1", "w1", "b"), ("t1", "w2", "a"), ("t2", "w1", "a"), ("t2", "w2", "b"))
    labels = METHODS[name]().fit_predict(df)
    assert labels.to_dict() == {"t1": "b", "t2": "b"}, name


def test_wawa_weights_by_agreement_with_majority() -> None:
    # MV: t1=a, t2=a, t4=b (2 of 3). Skills: w1 2/3, w2 1, w3 1/3, w4 1.
    # Wawa on t4: a = 2/3 (w1), b = 1/3 + 1 (w3, w4) -> P(a) = (2/3) / 2 = 1/3.
    df = rows(("t1", "w1", "a"), ("t1", "w2", "a"), ("t1", "w3", "b"),
              ("t2", "w1", "a"), ("t2", "w2", "a"), ("t2", "w3", "b"),
              ("t4", "w1", "a"), ("t4", "w3", "b"), ("t4", "w4", "b"))
    w = Wawa().fit(df)
    np.testing.assert_allclose(w.skills_.to_numpy(), [2 / 3, 1, 1 / 3, 1])
    assert w.probas_.loc["t4", "a"] == pytest.approx(1 / 3)
    assert w.probas_.loc["t1", "a"] == pytest.approx((2 / 3 + 1) / (2 / 3 + 1 + 1 / 3))


def test_dawid_skene_n_iter_zero_is_majority_vote(small: pd.DataFrame) -> None:
    ds = DawidSkene(n_iter=0).fit(small)
    assert_frame_equal(ds.probas_, MajorityVote().fit(small).probas_)
    assert ds.n_iter_ == 0


def test_dawid_skene_learns_an_inverted_rater() -> None:
    # w3 always says the opposite; DS's confusion matrix turns w3's answer into evidence.
    tasks = [f"t{i}" for i in range(6)]
    truth = ["a", "b", "a", "b", "a", "b"]
    flip = {"a": "b", "b": "a"}
    df = rows(*[(t, "w1", y) for t, y in zip(tasks, truth)], *[(t, "w2", y) for t, y in zip(tasks, truth)],
              *[(t, "w3", flip[y]) for t, y in zip(tasks, truth)], ("t6", "w3", "a"))
    ds = DawidSkene(prior=0).fit(df)
    assert ds.labels_["t6"] == "b"
    assert ds.errors_.loc[("w3", "a"), "b"] > 0.99
    assert ds.loss_history_ == sorted(ds.loss_history_)
    # MAP (default prior 1, 0.7 of it on the diagonal): w3's column "b" holds <= 4 answers "a" (t1, t3, t5
    # and t6 once t6 is "b") plus one pseudo-answer, 0.3 of it on "a": P(a | b) <= (4 + 0.3) / 5 = 0.86.
    ds = DawidSkene().fit(df)
    assert ds.labels_["t6"] == "b"
    assert 0.8 < ds.errors_.loc[("w3", "a"), "b"] <= 0.86 + 1e-9
    assert ds.loss_history_ == sorted(ds.loss_history_)


def test_gold_pins_tasks_and_anchors_quality() -> None:
    df = rows(("t1", "w1", "a"), ("t1", "w2", "b"), ("t2", "w1", "a"), ("t2", "w2", "b"))
    gold = pd.Series({"t1": "b"})
    for cls in (DawidSkene, OneCoinDawidSkene, GLAD, MACE, MajorityVote, Wawa):
        model = cls().fit(df, gold=gold)
        assert model.labels_["t1"] == "b", cls
        assert model.probas_.loc["t1", "b"] == 1.0
    assert DawidSkene().fit(df, gold=gold).labels_["t2"] == "b"  # w2 proved right on gold


def test_declared_classes_add_empty_columns() -> None:
    df = rows(("t", "w1", "a"), ("t", "w2", "a"))
    p = DawidSkene(classes=["a", "b", "c"]).fit(df).probas_
    assert list(p.columns) == ["a", "b", "c"]


def test_majority_vote_partial_fit_only_touches_reached_tasks(small: pd.DataFrame) -> None:
    mv = MajorityVote().fit(small)
    mv.partial_fit(rows(("t1", "w4", "b"), ("t1", "w5", "b"), ("t9", "w1", "b")))
    assert mv.labels_["t1"] == "b" and mv.labels_["t9"] == "b" and mv.labels_["t2"] == "b"
    assert mv.probas_.loc["t3", "a"] == pytest.approx(2 / 3)
    assert mv.skills_["w4"] == 1.0


def test_dawid_skene_partial_fit_close_to_refit(small: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    recs = []
    for t, z in enumerate(truth):
        for w in rng.choice(20, 5, replace=False):
            y = z if rng.random() < 0.75 else rng.integers(0, 3)
            recs.append((f"t{t}", f"w{w}", f"c{y}"))
    df = pd.DataFrame(recs, columns=["task", "worker", "label"])
    base, new = df.iloc[:1200], df.iloc[1200:]
    inc = DawidSkene().fit(base)
    untouched = inc.probas_.loc["t0"].copy()
    inc.partial_fit(new)
    full = DawidSkene().fit(df)
    assert (inc.labels_ == full.labels_.reindex(inc.labels_.index)).mean() > 0.97
    assert_series_equal(inc.probas_.loc["t0"], untouched)
    again = DawidSkene.from_state(counts=inc.counts_frame(), probas=inc.probas_)
    assert_series_equal(again.labels_, inc.labels_)


def test_dawid_skene_partial_fits_in_a_row_append_tasks_and_a_refit_starts_afresh() -> None:
    rng = np.random.default_rng(1)
    recs = [(f"t{t}", f"w{w}", "ab"[int(rng.random() < 0.2) ^ (t % 2)]) for t in range(200)
            for w in rng.choice(12, 4, replace=False)]
    df = pd.DataFrame(recs, columns=["task", "worker", "label"])
    model = DawidSkene().fit(df.iloc[:400])
    first = model.probas_.copy()
    for start in range(400, len(df), 100):  # several batches, each reaching old and new tasks
        model.partial_fit(df.iloc[start:start + 100])
        assert set(model.probas_.index) == set(df["task"].iloc[:start + 100])
    untouched = first.index.difference(df["task"].iloc[400:])
    pd.testing.assert_frame_equal(model.probas_.loc[untouched], first.loc[untouched])
    assert list(model.probas_.index[:len(first)]) == list(first.index)  # new tasks come after the known ones
    assert model.probas_.sum(axis=1).round(9).eq(1).all()
    refit = model.fit(df.iloc[:400])  # the same object, refitted: no state from the partial fits survives
    pd.testing.assert_frame_equal(refit.probas_, first)
    refit.partial_fit(df.iloc[400:])
    assert set(refit.probas_.index) == set(df["task"])
