import numpy as np
import pytest

from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy

PANDA = Hierarchy.from_groups(
    {"benign": ["ISUP 0"], "low": ["ISUP 1", "ISUP 2"], "high": ["ISUP 3", "ISUP 4", "ISUP 5"]}, ordinal=True
)


def test_matrix_and_roll_up():
    m = PANDA.matrix
    assert m.shape == (6, 3)
    assert m.sum(1).tolist() == [1] * 6
    assert m[:, 1].tolist() == [0, 1, 1, 0, 0, 0]
    p = np.array([[0.1, 0.2, 0.3, 0.1, 0.2, 0.1]])
    np.testing.assert_allclose(PANDA.roll_up(p), [[0.1, 0.5, 0.4]])
    assert PANDA.coarse_of([0, 2, 5]).tolist() == [0, 1, 2]
    assert PANDA.describe().startswith("benign{ISUP 0} | low{ISUP 1, ISUP 2}")


def test_toml_round_trip(tmp_path):
    path = tmp_path / "h.toml"
    path.write_text(
        'fine = ["NILM", "LSIL", "HSIL"]\n[groups]\nnegative = ["NILM"]\npositive = ["HSIL", "LSIL"]\n'
    )
    h = Hierarchy.from_toml(path)
    assert h.fine == ("NILM", "LSIL", "HSIL")
    assert h.coarse == ("negative", "positive")
    assert h.parent == (0, 1, 1)


def test_toml_fine_class_with_two_parents(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[groups]\nnegative = ["NILM", "ASC-US"]\npositive = ["ASC-US", "HSIL"]\n')
    with pytest.raises(ConfigError, match=r"bad.toml: fine class 'ASC-US' has two parents"):
        Hierarchy.from_toml(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[groups]\na = ["x", "x"]\nb = ["y"]\n', "unique"),
        ('[groups]\na = []\nb = ["y"]\n', "has no fine class"),
        ('fine = ["x", "y", "z"]\n[groups]\na = ["x"]\nb = ["y"]\n', "in no group"),
        ("[groups\n", "not valid TOML"),
        ('colour = 1\n[groups]\na = ["x"]\nb = ["y"]\n', "unknown key"),
    ],
)
def test_toml_errors(tmp_path, text, match):
    path = tmp_path / "h.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        Hierarchy.from_toml(path)


def test_direct_validation():
    with pytest.raises(ConfigError, match="no fine class"):
        Hierarchy(("a", "b"), ("x", "y", "z"), (0, 1))
    with pytest.raises(ConfigError, match="out of range"):
        Hierarchy(("a", "b"), ("x",), (0, 3))
