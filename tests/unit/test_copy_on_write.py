"""Private copies of aggregates share their containers until one side changes (domain.aggregates
`CheapCopy`): a change on either side never shows on the other."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from domain.aggregates import Organisation, SchemeCatalogue

AT = datetime(2025, 3, 1, tzinfo=UTC)
WHO = {"actor": "admin", "at": AT, "command_id": "c"}


def _org() -> Organisation:
    org = Organisation.start("admin", AT, "c-0")
    org.record_department(department="d-1", name={"zh": "一科", "en": "One"}, approved_posts=3,
                          in_charge="p-1", **WHO)
    org.record_person(person="p-1", name={"zh": "甲", "en": "A"}, position="staff", department="d-1", **WHO)
    org.collect_events()
    return org


def test_a_copy_changed_leaves_the_original_as_it_was() -> None:
    original = _org()
    clone = copy.deepcopy(original)
    assert clone.people is original.people  # shared until a change
    clone.record_person(person="p-2", name={"zh": "乙", "en": "B"}, position="department_head",
                        department="d-1", **WHO)
    assert set(clone.people) == {"p-1", "p-2"} and clone.heads == {"d-1": "p-2"}
    assert set(original.people) == {"p-1"} and original.heads == {}
    assert original.version == 3 and clone.version == 4
    assert original.pending_events == [] and len(clone.pending_events) == 1


def test_the_original_changed_leaves_its_copies_as_they_were() -> None:
    original = _org()
    first, second = copy.deepcopy(original), copy.deepcopy(original)
    event = copy.deepcopy(first)
    event.record_department(department="d-2", name={"zh": "二科", "en": "Two"}, approved_posts=1,
                            in_charge=None, **WHO)
    (change,) = event.collect_events()
    change.mutate(original)  # as a fast-forward of the cached original does
    assert set(original.departments) == {"d-1", "d-2"}
    assert set(first.departments) == {"d-1"} and set(second.departments) == {"d-1"}
    copy_of_copy = copy.deepcopy(first)
    copy_of_copy.record_person(person="p-3", name={"zh": "丙", "en": "C"}, position="staff",
                               department="d-1", **WHO)
    assert set(first.people) == {"p-1"} and set(copy_of_copy.people) == {"p-1", "p-3"}


def test_nested_containers_of_the_catalogue_are_owned_too() -> None:
    catalogue = SchemeCatalogue.start("admin", AT, "c-0")
    catalogue.list_version(scheme_id="bianban", version=1, digest="d1", **WHO)
    catalogue.collect_events()
    clone = copy.deepcopy(catalogue)
    clone.list_version(scheme_id="bianban", version=2, digest="d2", **WHO)
    assert catalogue.versions == {"bianban": {1: "d1"}}
    assert clone.versions == {"bianban": {1: "d1", 2: "d2"}}
