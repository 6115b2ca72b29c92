"""The policy file: roles, inheritance, type and attribute names, the register."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.security.policy import Policy, read_policy

SDM = "https://smartdatamodels.org/dataModel.Streetlighting/"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(read_policy(None))


def test_a_short_name_matches_the_type_under_any_context(policy: Policy) -> None:
    lighting = frozenset({"lighting"})
    for iri in (SDM + "Streetlight", DEFAULT + "Streetlight", "Streetlight"):
        assert policy.decide(lighting, "", (iri,), "write").allowed
    assert not policy.decide(lighting, "", (SDM + "StreetlightX",), "write").allowed


def test_a_role_has_the_grants_of_the_roles_it_inherits(policy: Policy) -> None:
    planner = frozenset({"care_planner"})
    assert policy.decide(planner, "", (DEFAULT + "Lock",), "write").allowed
    assert policy.decide(planner, "", (DEFAULT + "CareAssignment",), "write").allowed
    assert not policy.decide(frozenset({"care"}), "", (DEFAULT + "CareAssignment",),
                             "write").allowed


def test_the_public_may_do_nothing_and_unknown_roles_nothing_either(policy: Policy) -> None:
    for roles in (frozenset({"public"}), frozenset({"no-such-role"}), frozenset()):
        assert not policy.decide(roles, "", (), "read").allowed


def test_the_register_names_personal_attributes_and_whose_they_are(policy: Policy) -> None:
    lock = policy.register.of([DEFAULT + "Lock"])
    assert lock.attrs is not None and {"address", "owner"} <= lock.attrs
    assert lock.subjects == ("owner",) and lock.pseudonyms == {"owner"}
    assert "Home care" in lock.purpose
    assert policy.register.of([DEFAULT + "LockCode"]).attrs is None
    lamp = policy.register.of([SDM + "Streetlight"])
    assert lamp.attrs == frozenset() and not lamp.subjects and not lamp.purpose


@pytest.mark.parametrize(("text", "problem"), [
    ("[roles.admin]\n", "'public'"),
    ("[roles.admin]\n[roles.public]\ninherits = ['nobody']\n", "unknown"),
    ("[roles.admin]\n[roles.public]\ngrants = [{actions = ['fly']}]\n", "actions"),
    ("[roles.admin]\n[roles.public]\n[[personal]]\ntype='X'\nattributes=['a']\n"
     "subject='id'\npurpose='p'\nlegal_basis='b'\nretention='one year'\n", "retention"),
    ("roles = 3", "roles"),
    ("[roles.admin", "not valid"),
])
def test_a_bad_policy_file_is_refused_with_the_reason(tmp_path: Path, text: str,
                                                      problem: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem):
        read_policy(path)
