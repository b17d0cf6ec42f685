"""`Registry`: case-insensitive lookup to the canonical name; unknown names list the valid ones and the closest
match, naming the option the user typed."""

from __future__ import annotations

import pytest

from benchmark.core.errors import UnknownNameError
from benchmark.core.registry import Registry


@pytest.fixture
def registry() -> Registry[int]:
    reg: Registry[int] = Registry("model", "--models")
    reg.add("abmil", 1)
    reg.add("clam-sb", 2)
    return reg


@pytest.mark.parametrize("typed", ["abmil", "ABMIL", "AbMil"])
def test_resolve_is_case_insensitive_and_canonical(registry, typed):
    assert registry.resolve(typed) == "abmil"
    assert registry.get(typed) == 1


def test_unknown_name_lists_valid_names_and_closest_match(registry):
    with pytest.raises(
        UnknownNameError,
        match=r"unknown model 'ABMILL' for --models; valid names: abmil, clam-sb\. "
        r"Did you mean 'abmil'\?",
    ):
        registry.resolve("ABMILL")


def test_unknown_name_names_the_option_given(registry):
    with pytest.raises(UnknownNameError, match="for --model;"):
        registry.get("clam", option="--model")


def test_names_stay_lowercase(registry):
    with pytest.raises(ValueError, match="lowercase"):
        registry.add("TransMIL", 3)
