"""Split module: disjoint, covering, stratified, case-grouped folds; golden indices; digests; errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.core.config import CVConfig
from benchmark.core.errors import DataError, SplitError
from benchmark.cv import (
    ROLES,
    check_splits,
    default_split_path,
    describe_splits,
    fold_columns,
    fold_indices,
    get_or_create_splits,
    load_splits,
    make_splits,
    save_splits,
    split_digest,
)

KFOLD = CVConfig()  # kfold, k=5, val_fraction=0.2, seed=0
MC = CVConfig(protocol="mc", n_folds=10, val_fraction=0.1, test_fraction=0.1, seed=0)


def make_table() -> pd.DataFrame:
    """60 slides, 40 cases (24 × 1 slide, 12 × 2, 4 × 3), 3 classes (case i has class i % 3)."""
    sizes = [1] * 24 + [2] * 12 + [3] * 4
    rows = []
    for i, n in enumerate(sizes):
        for _ in range(n):
            rows.append((f"S{len(rows):02d}", f"C{i:02d}", i % 3))
    return pd.DataFrame(rows, columns=["slide_id", "case_id", "fine_label"])


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_table()


@pytest.fixture(scope="module")
def kfold(table: pd.DataFrame) -> pd.DataFrame:
    return make_splits(table, KFOLD)


@pytest.fixture(scope="module")
def mc(table: pd.DataFrame) -> pd.DataFrame:
    return make_splits(table, MC)


# ---------------------------------------------------------------------------------------- properties
def test_shape_and_columns(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    assert list(kfold.columns) == ["slide_id", "case_id", *[f"fold_{k}" for k in range(5)]]
    assert kfold["slide_id"].tolist() == table["slide_id"].tolist()  # input order kept
    assert kfold["case_id"].tolist() == table["case_id"].tolist()
    assert set(np.unique(kfold[fold_columns(kfold)].to_numpy())) == set(ROLES)


@pytest.mark.parametrize("name", ["kfold", "mc"])
def test_roles_disjoint_and_complete(request: pytest.FixtureRequest, table: pd.DataFrame, name: str) -> None:
    splits = request.getfixturevalue(name)
    for k in range(len(fold_columns(splits))):
        idx = fold_indices(splits, table, k)
        joined = np.concatenate([idx[r] for r in ROLES])
        assert np.array_equal(np.sort(joined), np.arange(len(table)))  # disjoint and covering in a fold
        assert all(len(idx[r]) > 0 for r in ROLES)


def test_kfold_tests_every_slide_exactly_once(kfold: pd.DataFrame) -> None:
    tested = (kfold[fold_columns(kfold)] == "test").sum(axis=1)
    assert tested.tolist() == [1] * len(kfold)


@pytest.mark.parametrize("name", ["kfold", "mc"])
def test_no_case_crosses_roles(request: pytest.FixtureRequest, name: str) -> None:
    splits = request.getfixturevalue(name)
    for fold in fold_columns(splits):
        roles_per_case = splits.groupby("case_id")[fold].nunique()
        assert roles_per_case.max() == 1, fold


@pytest.mark.parametrize("name", ["kfold", "mc"])
def test_every_class_in_every_training_part(
    request: pytest.FixtureRequest, table: pd.DataFrame, name: str
) -> None:
    splits = request.getfixturevalue(name)
    for k in range(len(fold_columns(splits))):
        train = table["fine_label"].to_numpy()[fold_indices(splits, table, k)["train"]]
        assert set(train) == {0, 1, 2}


def test_kfold_is_stratified(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    overall = table["fine_label"].value_counts(normalize=True).sort_index().to_numpy()
    for k in range(5):
        test = table["fine_label"].to_numpy()[fold_indices(kfold, table, k)["test"]]
        props = np.bincount(test, minlength=3) / len(test)
        assert np.abs(props - overall).max() < 0.12, (k, props, overall)
        assert 10 <= len(test) <= 14  # 60 / 5 = 12 slides, ± case granularity


def test_kfold_val_is_about_val_fraction_of_training_part(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    for k in range(5):
        idx = fold_indices(kfold, table, k)
        share = len(idx["val"]) / (len(idx["val"]) + len(idx["train"]))
        assert 0.15 <= share <= 0.25, (k, share)


def test_mc_sizes_about_80_10_10() -> None:
    # singleton cases: 100 slides, classes 50/30/20 → exactly 80/10/10 slides, 5/3/2 per class in val and test
    t = pd.DataFrame(
        {
            "slide_id": [f"s{i}" for i in range(100)],
            "case_id": [f"c{i}" for i in range(100)],
            "fine_label": [0] * 50 + [1] * 30 + [2] * 20,
        }
    )
    splits = make_splits(t, MC)
    assert len(fold_columns(splits)) == 10
    desc = describe_splits(splits, t)
    for role, n, per_class in [("train", 80, [40, 24, 16]), ("val", 10, [5, 3, 2]), ("test", 10, [5, 3, 2])]:
        part = desc[desc["role"] == role]
        assert part["slides"].tolist() == [n] * 10
        assert part[["0", "1", "2"]].drop_duplicates().to_numpy().tolist() == [per_class]  # same every rep
    tests = [frozenset(splits.slide_id[splits[f] == "test"]) for f in fold_columns(splits)]
    assert len(set(tests)) == 10  # independent repetitions, not one split repeated


def test_mc_grouped_sizes_close_to_fractions(table: pd.DataFrame, mc: pd.DataFrame) -> None:
    desc = describe_splits(mc, table)
    assert desc.loc[desc["role"] == "test", "cases"].tolist() == [4] * 10  # round(40 cases · 0.1)
    assert desc.loc[desc["role"] == "val", "cases"].tolist() == [4] * 10
    assert desc.loc[desc["role"] == "train", "slides"].between(40, 52).all()


# ---------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("cv", [KFOLD, MC], ids=["kfold", "mc"])
def test_deterministic(table: pd.DataFrame, cv: CVConfig) -> None:
    a, b = make_splits(table, cv), make_splits(table, cv)
    pd.testing.assert_frame_equal(a, b)
    other = make_splits(table, CVConfig(**{**cv.__dict__, "seed": 1}))
    assert not a.equals(other)


def test_golden_indices(table: pd.DataFrame, kfold: pd.DataFrame, mc: pd.DataFrame) -> None:
    # Pinned once; a change here means every saved split file / logged digest silently changed meaning.
    assert sorted(kfold.slide_id[kfold.fold_0 == "test"]) == [
        "S03",
        "S11",
        "S12",
        "S13",
        "S22",
        "S32",
        "S33",
        "S40",
        "S41",
        "S57",
        "S58",
        "S59",
    ]
    assert sorted(kfold.slide_id[kfold.fold_0 == "val"]) == GOLDEN_KFOLD_VAL
    assert sorted(mc.slide_id[mc.fold_0 == "test"]) == GOLDEN_MC_TEST
    assert split_digest(kfold) == GOLDEN_KFOLD_DIGEST


GOLDEN_KFOLD_VAL = ["S02", "S07", "S17", "S26", "S27", "S46", "S47", "S48", "S49", "S50"]
GOLDEN_MC_TEST = ["S00", "S02", "S32", "S33", "S42", "S43"]
GOLDEN_KFOLD_DIGEST = "4db612ccd45f59548b1b70a93345fe974d5599984a2b0b4d9fb8b8a8679aca47"


# ---------------------------------------------------------------------------------------- digest and files
def test_canonical_bytes_and_digest_pinned(tmp_path) -> None:
    df = pd.DataFrame({"slide_id": ["a", "b,1"], "case_id": ["p", "q"], "fold_0": ["train", "test"]})
    path = tmp_path / "s.csv"
    digest = save_splits(df, path)
    assert path.read_bytes() == b'slide_id,case_id,fold_0\na,p,train\n"b,1",q,test\n'
    assert digest == split_digest(path) == split_digest(df)
    assert digest == "0ed0dd5b26d90c28489f5702e5529beec7790cfce174a054b6b293d767976614"


def test_save_load_roundtrip_and_digest(tmp_path, kfold: pd.DataFrame) -> None:
    path = tmp_path / "deep" / "splits.csv"
    digest = save_splits(kfold, path)
    assert digest == split_digest(path) == split_digest(kfold)
    loaded = load_splits(path)
    assert loaded.astype(str).equals(kfold.astype(str))
    assert split_digest(loaded) == digest
    assert [p.name for p in path.parent.iterdir()] == ["splits.csv"]  # no temp file left behind


def test_load_accepts_other_column_order(tmp_path, kfold: pd.DataFrame) -> None:
    path = tmp_path / "s.csv"
    kfold[["case_id", "fold_1", "slide_id", "fold_0", "fold_2", "fold_3", "fold_4"]].to_csv(path, index=False)
    loaded = load_splits(path)
    assert list(loaded.columns) == list(kfold.columns)
    assert split_digest(loaded) == split_digest(kfold)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a readable CSV"),
        (b"\xff\xfe\x00garbage\x00", "not a readable CSV"),
        (b"slide_id,case_id,fold_0\na,p,train,extra,more\n", "not a readable CSV"),
        (b"slide_id,fold_0\na,train\n", "missing column 'case_id'"),
        (b"slide_id,case_id\na,p\n", "no fold columns"),
        (b"slide_id,case_id,fold_0,fold_2\na,p,train,test\n", "without gaps"),
        (b"slide_id,case_id,fold_0,notes\na,p,train,x\n", "unexpected column"),
        (b"slide_id,case_id,fold_0\n", "no rows"),
        (b"slide_id,case_id,fold_0\na,p,train\nb,q,\n", "empty fold_0 on data row 2"),
        (b"slide_id,case_id,fold_0\na,p,train\nb,q\n", "row 3 has 2 fields"),
    ],
    ids=[
        "empty",
        "binary",
        "ragged",
        "no-case",
        "no-folds",
        "gap",
        "extra-col",
        "no-rows",
        "empty-cell",
        "short-row",
    ],
)
def test_malformed_file_raises(tmp_path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(SplitError, match=match):
        load_splits(path)


def test_missing_file_raises(tmp_path) -> None:
    with pytest.raises(SplitError, match="does not exist"):
        load_splits(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------- validation errors
def test_leaked_case_in_edited_file_is_caught(tmp_path, table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    path = tmp_path / "s.csv"
    save_splits(kfold, path)
    edited = load_splits(path)
    multi = edited["case_id"].value_counts()
    case = next(
        c
        for c in edited["case_id"]
        if multi[c] > 1 and (edited.loc[edited.case_id == c, "fold_2"] == "train").all()
    )
    row = edited.index[edited["case_id"] == case][0]
    edited.loc[row, "fold_2"] = "test"  # one slide of a multi-slide training case moved to test
    save_splits(edited, path)
    with pytest.raises(
        SplitError,
        match=rf"split file .*s\.csv: case {case} is in both train and test in fold_2 "
        r"\(cases must not cross roles\); regenerate with `benchmark splits make "
        r"--dataset toy --new-splits`",
    ):
        check_splits(load_splits(path), table, "kfold", source=str(path), dataset="toy")


def _edit(splits: pd.DataFrame, slide: str, fold: str, role: str) -> pd.DataFrame:
    out = splits.copy()
    out.loc[out["slide_id"] == slide, fold] = role
    return out


def test_validation_errors(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    single = "S00"  # case C00 has one slide, so moving it never leaks a case
    test_fold = next(f for f in fold_columns(kfold) if kfold.loc[0, f] == "test")
    other = next(f for f in fold_columns(kfold) if f != test_fold and kfold.loc[0, f] == "train")
    with pytest.raises(SplitError, match=r"slide S00 of the dataset is missing"):
        check_splits(kfold.iloc[1:], table, "kfold")
    extra = pd.concat([kfold, kfold.iloc[:1].assign(slide_id="ZZ", case_id="ZZ")], ignore_index=True)
    with pytest.raises(SplitError, match=r"slide ZZ is not in the dataset"):
        check_splits(extra, table, "kfold")
    with pytest.raises(SplitError, match=r"slide S00 is listed twice"):
        check_splits(pd.concat([kfold, kfold.iloc[:1]]), table, "kfold")
    with pytest.raises(SplitError, match=r"fold_0 has role 'Train' for slide S00"):
        check_splits(_edit(kfold, single, "fold_0", "Train"), table, "kfold")
    with pytest.raises(SplitError, match=rf"slide S00 is tested in 2 folds \(.*{other}.*\)"):
        check_splits(_edit(kfold, single, other, "test"), table, "kfold")
    with pytest.raises(SplitError, match=r"slide S00 is never tested"):
        check_splits(_edit(kfold, single, test_fold, "train"), table, "kfold")
    check_splits(_edit(kfold, single, test_fold, "train"), table, "mc")  # mc need not test every slide
    with pytest.raises(SplitError, match=r"slide S00 belongs to case C00 in the dataset but to case X"):
        check_splits(kfold.assign(case_id=["X"] + kfold["case_id"].tolist()[1:]), table, "kfold")
    no_val = kfold.copy()
    no_val.loc[no_val["fold_1"] == "val", "fold_1"] = "train"
    with pytest.raises(SplitError, match=r"fold_1 has an empty val part"):
        check_splits(no_val, table, "kfold")


def test_class_missing_from_training_part_states_limit(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    bad = kfold.copy()
    cls2 = table["fine_label"].to_numpy() == 2
    bad.loc[cls2 & (bad["fold_3"] == "train"), "fold_3"] = "val"  # whole cases move, so no leak
    named = table.assign(fine_name=table["fine_label"].map({0: "benign", 1: "atypical", 2: "malignant"}))
    with pytest.raises(
        SplitError,
        match=r"fine class 2 \(malignant\) has no training slide in fold_3; .*"
        r"n_folds must be ≤ the smallest class's case count \(13\)",
    ):
        check_splits(bad, named, "kfold")


def test_too_many_folds_states_limit(table: pd.DataFrame) -> None:
    with pytest.raises(
        SplitError, match=r"≤ the smallest class's case count \(13, fine class 1\), got n_folds=14"
    ):
        make_splits(table, CVConfig(n_folds=14))
    make_splits(table, CVConfig(protocol="mc", n_folds=14))  # mc repetitions are not bounded by class size


def test_rare_class_keeps_a_training_case() -> None:
    # class 2 has exactly 2 cases: with k=2 each training part holds one, which must stay in train.
    t = pd.DataFrame(
        {
            "slide_id": [f"s{i}" for i in range(22)],
            "case_id": [f"c{i}" for i in range(22)],
            "fine_label": [0] * 10 + [1] * 10 + [2] * 2,
        }
    )
    for seed in range(5):
        splits = make_splits(t, CVConfig(n_folds=2, seed=seed))
        check_splits(splits, t, "kfold")
        for k in range(2):
            assert 2 in set(t["fine_label"].to_numpy()[fold_indices(splits, t, k)["train"]])


def test_missing_case_ids_fall_back_to_slides() -> None:
    t = pd.DataFrame(
        {
            "slide_id": [f"s{i}" for i in range(20)],
            "case_id": [""] * 10 + [None] * 10,
            "fine_label": [0, 1] * 10,
        }
    )
    splits = make_splits(t, CVConfig())
    assert splits["case_id"].tolist() == t["slide_id"].tolist()
    check_splits(splits, t, "kfold")


@pytest.mark.parametrize("cv", [CVConfig(n_folds=3), MC], ids=["kfold", "mc"])
def test_cases_with_mixed_fine_labels(cv: CVConfig) -> None:
    # every third case holds slides of two fine classes; grouping must still hold and validation pass
    rows = [(f"s{i}", f"c{i // 2}", (i // 2) % 3 if i % 6 else ((i // 2) + 1) % 3) for i in range(48)]
    t = pd.DataFrame(rows, columns=["slide_id", "case_id", "fine_label"])
    assert (t.groupby("case_id")["fine_label"].nunique() > 1).sum() == 8
    splits = make_splits(t, cv)
    check_splits(splits, t, cv.protocol)
    assert all(splits.groupby("case_id")[f].nunique().max() == 1 for f in fold_columns(splits))


# ---------------------------------------------------------------------------------------- indices, reuse, describe
def test_fold_indices_match_by_slide_id(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    shuffled = kfold.sample(frac=1.0, random_state=3)
    for k in range(5):
        a, b = fold_indices(kfold, table, k), fold_indices(shuffled, table, k)
        for role in ROLES:
            assert np.array_equal(a[role], b[role])
            assert set(table["slide_id"].to_numpy()[a[role]]) == set(
                kfold.slide_id[kfold[f"fold_{k}"] == role]
            )
    with pytest.raises(SplitError, match=r"fold 5 is out of range; the split table has 5 folds \(0..4\)"):
        fold_indices(kfold, table, 5)


def test_get_or_create_reuses_and_guards(tmp_path, table: pd.DataFrame) -> None:
    path = default_split_path(tmp_path, "toy", KFOLD)
    assert path == tmp_path / "toy" / "kfold-k5-seed0.csv"
    splits, p, digest = get_or_create_splits(tmp_path, "toy", table, KFOLD)
    assert p == path and path.exists() and digest == split_digest(path) == GOLDEN_KFOLD_DIGEST
    before = path.stat().st_mtime_ns
    again, _, digest2 = get_or_create_splits(tmp_path, "toy", table.iloc[::-1], KFOLD)  # reused, not remade
    assert digest2 == digest and path.stat().st_mtime_ns == before
    assert again.astype(str).equals(splits.astype(str))
    with pytest.raises(SplitError, match=r"has 5 folds but cv.n_folds=3; pass --folds 5"):
        get_or_create_splits(tmp_path, "toy", table, CVConfig(n_folds=3), path=path)
    save_splits(splits.iloc[:-1], path)  # stale file: a slide was added to the dataset since
    with pytest.raises(SplitError, match=r"slide S59 of the dataset is missing.*--dataset toy --new-splits"):
        get_or_create_splits(tmp_path, "toy", table, KFOLD)
    _, _, digest3 = get_or_create_splits(tmp_path, "toy", table, KFOLD, overwrite=True)
    assert digest3 == digest


def test_describe_splits_counts(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    desc = describe_splits(kfold, table, class_names=["benign", "atypical", "malignant"])
    assert list(desc.columns) == ["fold", "role", "slides", "cases", "benign", "atypical", "malignant"]
    assert len(desc) == 15
    assert (desc.groupby("fold")["slides"].sum() == 60).all()
    assert (desc[["benign", "atypical", "malignant"]].sum(axis=1) == desc["slides"]).all()
    assert desc.loc[desc.role == "test", ["benign", "atypical", "malignant"]].sum().tolist() == [22, 19, 19]


@pytest.mark.parametrize(
    "labels", [[0, 1, -1, 1], [0, 1, 1.5, 0], [0, 1, None, 0]], ids=["negative", "float", "none"]
)
def test_bad_labels_raise(labels: list) -> None:
    t = pd.DataFrame({"slide_id": list("abcd"), "case_id": list("abcd"), "fine_label": labels})
    with pytest.raises(DataError, match=r"slide 'c' has fine_label .*integer class indices"):
        make_splits(t, CVConfig(n_folds=2))


# ---------------------------------------------------------------------------------------- repeated k-fold
REPEATED = CVConfig(n_folds=5, repeats=3)


def test_repeated_kfold_tests_every_slide_once_per_repeat(table: pd.DataFrame, kfold: pd.DataFrame) -> None:
    splits = make_splits(table, REPEATED)
    cols = fold_columns(splits)
    assert cols == [f"fold_{i}" for i in range(15)]
    tests = []
    for r in range(3):
        block = splits[cols[r * 5 : (r + 1) * 5]].to_numpy()
        assert ((block == "test").sum(axis=1) == 1).all(), r  # each slide tested once in this repeat
        assert ((block == "val").sum(axis=1) <= 4).all()
        tests.append([frozenset(splits.slide_id[splits[c] == "test"]) for c in cols[r * 5 : (r + 1) * 5]])
    assert len({frozenset(t) for t in tests}) == 3  # three different partitions, not one repeated
    # repeat 0 is the single k-fold partition with the same seed (fold columns and validation carve)
    assert splits[cols[:5]].equals(kfold[cols[:5]])
    check_splits(splits, table, "kfold", repeats=3)
    check_splits(splits, table, "kfold")  # repeats inferred from the file
    for k in range(15):
        idx = fold_indices(splits, table, k)
        assert sorted(np.concatenate(list(idx.values())).tolist()) == list(range(60))
        assert set(table["fine_label"].to_numpy()[idx["train"]]) == {0, 1, 2}


def test_repeated_kfold_deterministic_and_seeded(table: pd.DataFrame) -> None:
    a, b = make_splits(table, REPEATED), make_splits(table, REPEATED)
    pd.testing.assert_frame_equal(a, b)
    other = make_splits(table, CVConfig(n_folds=5, repeats=3, seed=1))
    assert not a[["fold_5", "fold_6"]].equals(other[["fold_5", "fold_6"]])
    # adding repeats never changes the earlier ones
    two = make_splits(table, CVConfig(n_folds=5, repeats=2))
    assert two.equals(a[["slide_id", "case_id", *[f"fold_{i}" for i in range(10)]]])


def test_repeated_kfold_validation_errors(table: pd.DataFrame) -> None:
    splits = make_splits(table, REPEATED)
    cols = fold_columns(splits)
    # S00 tested twice within repeat 1 (columns 5..9)
    test_col = next(c for c in cols[5:10] if splits.loc[0, c] == "test")
    other = next(c for c in cols[5:10] if c != test_col and splits.loc[0, c] == "train")
    with pytest.raises(
        SplitError,
        match=rf"slide S00 is tested in 2 folds \(.*{other}.*\) of repeat 1 "
        r"\(fold_5..fold_9\); repeated k-fold splits test every slide exactly "
        r"once per repeat",
    ):
        check_splits(_edit(splits, "S00", other, "test"), table, "kfold", repeats=3)
    with pytest.raises(SplitError, match=r"slide S00 is never tested in repeat 1 \(fold_5..fold_9\)"):
        check_splits(_edit(splits, "S00", test_col, "train"), table, "kfold", repeats=3)
    with pytest.raises(SplitError, match=r"15 fold columns cannot hold 4 repeats"):
        check_splits(splits, table, "kfold", repeats=4)
    with pytest.raises(SplitError, match=r"tested in 3 folds"):
        check_splits(splits, table, "kfold", repeats=1)  # a repeated file is not a plain k-fold file


def test_repeated_kfold_file_name_and_reuse(tmp_path, table: pd.DataFrame) -> None:
    path = default_split_path(tmp_path, "toy", REPEATED)
    assert path == tmp_path / "toy" / "kfold-k5x3-seed0.csv"
    assert (
        default_split_path(tmp_path, "toy", CVConfig(n_folds=10, repeats=5)).name == "kfold-k10x5-seed0.csv"
    )
    splits, p, digest = get_or_create_splits(tmp_path, "toy", table, REPEATED)
    assert p == path and len(fold_columns(load_splits(path))) == 15 and digest == split_digest(splits)
    again, _, digest2 = get_or_create_splits(tmp_path, "toy", table, REPEATED)
    assert digest2 == digest
    with pytest.raises(SplitError, match=r"has 15 folds but cv.n_folds × cv.repeats = 5 × 2 = 10"):
        get_or_create_splits(tmp_path, "toy", table, CVConfig(n_folds=5, repeats=2), path=path)
    with pytest.raises(SplitError, match=r"has 15 folds but cv.n_folds=5"):
        get_or_create_splits(tmp_path, "toy", table, KFOLD, path=path)
