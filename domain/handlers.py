"""Deciding on commands: validate against SCORING.md, then record events.

Each handler checks everything first and triggers events only when the command is accepted,
so a refused command leaves every aggregate untouched. Handlers reach other aggregates through
a `Context` (the application's unit of work), so this module stays free of storage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from domain import commands as c
from domain import facts as f
from domain.aggregates import (
    Appraisal,
    Organisation,
    SchemeCatalogue,
    SchemeVersion,
    Year,
    appraisal_key,
)
from domain.errors import Conflict, DomainError, InvalidDocument, NotFound
from domain.scheme import RatingBase, Scheme, builtin_document, parse_scheme


class Context(Protocol):
    """What a handler may read and stage; implemented by the application's unit of work."""

    def organisation(self) -> Organisation | None: ...
    def scheme_version(self, scheme_id: str, version: int) -> SchemeVersion | None: ...
    def scheme(self, scheme_id: str, version: int) -> Scheme: ...
    def catalogue(self) -> SchemeCatalogue | None: ...
    def year(self, year: int) -> Year | None: ...
    def appraisal(self, key: str) -> Appraisal | None: ...
    def command_target(self, command_id: str) -> tuple[str, str] | None: ...  # (type, aggregate key)
    def year_results(self, year: int) -> Any: ...
    def open_appeals(self, year: int) -> list[str]: ...
    def stage(self, *aggregates: Any) -> None: ...


class Accepted(NamedTuple):
    """What an accepted command did: the aggregate it recorded on, and a note for people."""

    target: str  # an appraisal key, "org", "scheme:bianban@1", "year:2025"
    note: str = ""
    recorded: bool = True  # False when accepted as a no-op (the same scheme published again)


class Envelope(NamedTuple):
    """Who issued a command, its business time and its id (a tuple: one per imported command)."""

    actor: str
    at: datetime
    command_id: str

    def fields(self) -> dict[str, Any]:
        return {"actor": self.actor, "at": self.at, "command_id": self.command_id}


Handler = Callable[[Any, Envelope, Context], Accepted]
HANDLERS: dict[type[c.Command], Handler] = {}


def handles(command_type: type[c.Command]) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[command_type] = handler
        return handler
    return register


def decide(command: c.Command, envelope: Envelope, ctx: Context) -> Accepted:
    return HANDLERS[type(command)](command, envelope, ctx)


def digest(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- schemes -------------------------------------------------------------------------------------


@handles(c.PublishScheme)
def publish_scheme(cmd: c.PublishScheme, env: Envelope, ctx: Context) -> Accepted:
    if (cmd.builtin is None) == (cmd.document is None):
        raise DomainError("document", "give either builtin or document (exactly one)", rule="scheme.publish")
    document = builtin_document(cmd.builtin) if cmd.builtin else cmd.document
    try:
        scheme = parse_scheme(document)
    except InvalidDocument as exc:
        if cmd.builtin:
            raise
        raise InvalidDocument([(f"document.{path}", message) for path, message in exc.problems],
                              rule=exc.rule) from None
    canonical = scheme.document()
    content_digest = digest(canonical)
    target = f"scheme:{scheme.ref}"
    existing = ctx.scheme_version(scheme.id, scheme.version)
    if existing is not None:
        if existing.digest == content_digest:
            return Accepted(target, f"{scheme.ref} is already published with this content", recorded=False)
        raise Conflict("document.version",
                       f"{scheme.ref} is already published with other content: a published version "
                       f"never changes; publish version {scheme.version + 1} superseding it",
                       rule="scheme-immutable")
    catalogue = ctx.catalogue()
    known = catalogue.versions.get(scheme.id, {}) if catalogue else {}
    if scheme.supersedes is not None and scheme.supersedes not in known:
        raise NotFound("document.supersedes",
                       f"{scheme.id}@{scheme.supersedes} is not published", rule="scheme-supersedes")
    if catalogue is None:
        catalogue = SchemeCatalogue.start(**env.fields())
    version = SchemeVersion.publish(scheme_id=scheme.id, version=scheme.version, document=canonical,
                                    digest=content_digest, **env.fields())
    catalogue.list_version(scheme_id=scheme.id, version=scheme.version, digest=content_digest,
                           **env.fields())
    ctx.stage(version, catalogue)
    return Accepted(target)


# --- the organisation ----------------------------------------------------------------------------


def _organisation(ctx: Context, env: Envelope) -> Organisation:
    org = ctx.organisation()
    if org is None:
        org = Organisation.start(**env.fields())
        ctx.stage(org)
    return org


@handles(c.RecordDepartment)
def record_department(cmd: c.RecordDepartment, env: Envelope, ctx: Context) -> Accepted:
    org = ctx.organisation()
    if org and cmd.department in org.people:
        raise Conflict("department", f"{cmd.department} is already a person's id "
                       "(departments and people share one namespace)", rule="unique-ids")
    if cmd.in_charge is not None:
        leader = org.people.get(cmd.in_charge) if org else None
        if leader is None:
            raise NotFound("in_charge", f"no person {cmd.in_charge} (record the leader first)",
                           rule="in-charge-leader")
        if leader["position"] != "leader":
            raise DomainError("in_charge", f"{cmd.in_charge} is a {leader['position']}: the leader in "
                              "charge (分管领导) must be a leader", rule="in-charge-leader")
    org = _organisation(ctx, env)
    org.record_department(department=cmd.department, name=cmd.name.model_dump(),
                          approved_posts=cmd.approved_posts, in_charge=cmd.in_charge, **env.fields())
    ctx.stage(org)
    return Accepted("org")


@handles(c.RecordPerson)
def record_person(cmd: c.RecordPerson, env: Envelope, ctx: Context) -> Accepted:
    org = ctx.organisation()
    departments = org.departments if org else {}
    if cmd.person in departments:
        raise Conflict("person", f"{cmd.person} is already a department's id "
                       "(departments and people share one namespace)", rule="unique-ids")
    if cmd.position in ("staff", "department_head"):
        if cmd.department is None:
            raise DomainError("department", f"required for a {cmd.position}", rule="membership")
        if cmd.department not in departments:
            raise NotFound("department", f"no department {cmd.department}", rule="membership")
    elif cmd.department is not None:
        raise DomainError("department", f"a {cmd.position} belongs to no department "
                          "(only staff and department heads do)", rule="membership")
    if cmd.position == "department_head" and org is not None:
        head = org.head_of(cmd.department or "")
        if head is not None and head != cmd.person:
            raise Conflict("position", f"department {cmd.department} already has a head ({head}); "
                           "a department has at most one", rule="one-head")
    if org is not None and cmd.position != "leader":
        led = sorted(d for d, dep in departments.items() if dep["in_charge"] == cmd.person)
        if led:
            raise DomainError("position", f"{cmd.person} is the leader in charge of {', '.join(led)}: "
                              "reassign those departments first", rule="in-charge-leader")
    org = _organisation(ctx, env)
    org.record_person(person=cmd.person, name=cmd.name.model_dump(), position=cmd.position,
                      department=cmd.department, **env.fields())
    ctx.stage(org)
    return Accepted("org")


# --- appraisals ----------------------------------------------------------------------------------


@handles(c.OpenAppraisal)
def open_appraisal(cmd: c.OpenAppraisal, env: Envelope, ctx: Context) -> Accepted:
    org = ctx.organisation()
    subject: dict[str, Any] | None = None
    if org and cmd.subject in org.departments:
        dep = org.departments[cmd.subject]
        subject = {"kind": "department", "name": dep["name"], "position": None,
                   "department": cmd.subject, "approved_posts": dep["approved_posts"]}
    elif org and cmd.subject in org.people:
        person = org.people[cmd.subject]
        if person["position"] not in ("staff", "department_head"):
            raise DomainError("subject", f"{cmd.subject} is a {person['position']}: only departments, "
                              "staff and department heads are appraised", rule="appraised-subjects")
        subject = {"kind": "person", "name": person["name"], "position": person["position"],
                   "department": person["department"], "approved_posts": None}
    if subject is None:
        raise NotFound("subject", f"no department or person {cmd.subject}", rule="appraised-subjects")
    if ctx.scheme_version(cmd.scheme.id, cmd.scheme.version) is None:
        raise NotFound("scheme", f"scheme {cmd.scheme.ref} is not published", rule="scheme-published")
    key = appraisal_key(cmd.year, cmd.subject)
    year = ctx.year(cmd.year)
    if year is not None:
        bound = f"{year.scheme_id}@{year.scheme_version}"
        if bound != cmd.scheme.ref:
            raise Conflict("scheme", f"year {cmd.year} uses {bound}: all appraisals of a year use one "
                           "scheme version (year.adopt rebinds a year)", rule="one-scheme-per-year")
        if year.finalized:
            raise Conflict("year", f"year {cmd.year} is final", rule="year-final")
    if ctx.appraisal(key) is not None:
        raise Conflict("subject", f"appraisal {key} is already open", rule="one-appraisal")
    if year is None:
        year = Year.open(year=cmd.year, scheme_id=cmd.scheme.id, scheme_version=cmd.scheme.version,
                         **env.fields())
    year.record(Year.SubjectEnrolled, subject=cmd.subject, kind=subject["kind"], **env.fields())
    appraisal = Appraisal.open(year=cmd.year, subject=cmd.subject, **subject, **env.fields())
    ctx.stage(year, appraisal)
    return Accepted(key)


def _appraisal(ctx: Context, key: str) -> tuple[Appraisal, Year, Scheme]:
    appraisal = ctx.appraisal(key)
    if appraisal is None:
        raise NotFound("appraisal", f"no appraisal {key} (open it with appraisal.open)", rule="appraisal-open")
    year = ctx.year(appraisal.facts.year)
    assert year is not None
    if year.finalized:
        raise Conflict("appraisal", f"year {year.year} is final: nothing more can be recorded",
                       rule="year-final")
    return appraisal, year, ctx.scheme(year.scheme_id, year.scheme_version)


def _tree(appraisal: Appraisal) -> str:
    return "department" if appraisal.facts.kind == "department" else "individual"


@handles(c.RecordRating)
def record_rating(cmd: c.RecordRating, env: Envelope, ctx: Context) -> Accepted:
    appraisal, _, scheme = _appraisal(ctx, cmd.appraisal)
    facts = appraisal.facts
    leaf = scheme.leaf(facts.kind, cmd.leaf)
    if leaf is None or not isinstance(leaf.base, RatingBase):
        rated = ", ".join(x.id for x in scheme.leaves(facts.kind) if isinstance(x.base, RatingBase))
        raise DomainError("leaf", f"{cmd.leaf!r} is not a rated leaf of the {_tree(appraisal)} tree "
                          f"in {scheme.ref} (rated leaves: {rated})", rule="rated-leaves")
    if not cmd.period.startswith(str(facts.year)):
        raise DomainError("period", f"{cmd.period} is not in {facts.year}, the appraisal's year",
                          rule="period-in-year")
    rater = cmd.rater or env.actor
    _check_rater_role(ctx, scheme, facts, rater, cmd.rater_role)
    earlier = facts.rater_roles.get(rater)
    if earlier is not None and earlier.rater_role != cmd.rater_role:
        raise DomainError("rater_role", f"{rater} already rates {facts.key} as {earlier.rater_role} "
                          f"({earlier.ref}): one role per rater per subject", rule="one-role-per-rater")
    appraisal.record(Appraisal.RatingRecorded, leaf=cmd.leaf, period=cmd.period, rater=rater,
                     rater_role=cmd.rater_role, score=cmd.score, comment=cmd.comment, **env.fields())
    ctx.stage(appraisal)
    return Accepted(facts.key)


def _check_rater_role(ctx: Context, scheme: Scheme, facts: f.AppraisalFacts, rater: str, role: str) -> None:
    """SCORING.md §5: who may rate in which role."""
    org = ctx.organisation()
    person = org.people.get(rater) if org else None
    if person is None:
        raise NotFound("rater", f"no person {rater}: raters must be people of the organisation",
                       rule="rater-roles")
    subject = facts.subject
    department = org.departments.get(subject.department or "") if org else None
    in_charge = department["in_charge"] if department else None
    head = org.head_of(subject.department or "") if org else None
    weights = scheme.rater_weights(subject.kind, subject.position)

    def refuse(why: str) -> DomainError:
        return DomainError("rater_role", f"{rater} may not rate {facts.key} as {role}: {why} "
                           "(SCORING.md §5)", rule="rater-roles")

    if role != "self" and role not in weights.others:
        roles = ", ".join(["self", *weights.others])
        raise refuse(f"the role has no weight for this subject in {scheme.ref} (roles: {roles})")
    if role == "self":
        expected = head if subject.kind == "department" else subject.id
        if rater != expected:
            who = f"the department's head ({head or 'none recorded'})" if subject.kind == "department" else "the subject"
            raise refuse(f"only {who} rates as self")
        return
    if rater == subject.id:
        raise refuse("a subject rates their own appraisal only as self")
    if role == "superior" and person["position"] != "superior":
        raise refuse(f"{rater} is a {person['position']}, not a superior leader")
    if role == "in_charge" and rater != in_charge:
        raise refuse(f"the leader in charge of {subject.department} is {in_charge or 'not recorded'}")
    if role == "leadership_team":
        if person["position"] != "leader":
            raise refuse(f"{rater} is a {person['position']}, not a member of the leadership team")
        if "in_charge" in weights.others and rater == in_charge:
            raise refuse("the leader in charge rates in the in_charge role only")
    if role == "department_head":
        if subject.kind != "person" or subject.position != "staff":
            raise refuse("department heads rate the staff of their department")
        if rater != head:
            raise refuse(f"the head of {subject.department} is {head or 'not recorded'}")


def _input(scheme: Scheme, appraisal: Appraisal, name: str, kind: str, field: str) -> None:
    declared = scheme.inputs.get(name)
    if declared is None or declared.kind != kind:
        known = ", ".join(sorted(k for k, v in scheme.inputs.items() if v.kind == kind))
        raise DomainError(field, f"{name!r} is not a {kind} input of {scheme.ref} (known: {known})",
                          rule="known-inputs")
    if name not in scheme.inputs_read(appraisal.facts.kind):
        raise DomainError(field, f"{name!r} is not read by the {_tree(appraisal)} tree of {scheme.ref}",
                          rule="known-inputs")


@handles(c.RecordMeasurement)
def record_measurement(cmd: c.RecordMeasurement, env: Envelope, ctx: Context) -> Accepted:
    appraisal, _, scheme = _appraisal(ctx, cmd.appraisal)
    _input(scheme, appraisal, cmd.input, "measurement", "input")
    if cmd.value < 0:
        raise DomainError("value", f"{cmd.value} is negative: measurements are rates or counts",
                          rule="measurement-range")
    if scheme.inputs[cmd.input].unit == "%" and cmd.value > 100:
        raise DomainError("value", f"{cmd.value} is above 100: {cmd.input} is a percentage",
                          rule="measurement-range")
    appraisal.record(Appraisal.MeasurementRecorded, input=cmd.input, value=cmd.value,
                     evidence=cmd.evidence, **env.fields())
    ctx.stage(appraisal)
    return Accepted(appraisal.key)


@handles(c.RecordOccurrence)
def record_occurrence(cmd: c.RecordOccurrence, env: Envelope, ctx: Context) -> Accepted:
    appraisal, _, scheme = _appraisal(ctx, cmd.appraisal)
    _input(scheme, appraisal, cmd.item, "count", "item")
    appraisal.record(Appraisal.OccurrenceRecorded, item=cmd.item, count=cmd.count,
                     evidence=cmd.evidence, **env.fields())
    ctx.stage(appraisal)
    return Accepted(appraisal.key)


@handles(c.RecordSurvey)
def record_survey(cmd: c.RecordSurvey, env: Envelope, ctx: Context) -> Accepted:
    """SCORING.md §12: every option of the survey present with a count ≥ 0, no other, total ≥ 1."""
    appraisal, _, scheme = _appraisal(ctx, cmd.appraisal)
    _input(scheme, appraisal, cmd.input, "survey", "input")
    options = [option.id for option in scheme.inputs[cmd.input].options or ()]
    for option, count in cmd.counts.items():
        if option not in options:
            raise DomainError(f"counts.{option}", f"{option!r} is not an option of {cmd.input} in {scheme.ref} "
                              f"(options: {', '.join(options)})", rule="survey-options")
        if count < 0:
            raise DomainError(f"counts.{option}", f"{count} is negative: a number of responses is 0 or more",
                              rule="survey-counts")
    missing = [option for option in options if option not in cmd.counts]
    if missing:
        raise DomainError(f"counts.{missing[0]}", f"missing: every option of {cmd.input} needs its count "
                          f"(0 when no one chose it; missing: {', '.join(missing)})", rule="survey-options")
    if sum(cmd.counts.values()) < 1:
        raise DomainError("counts", "no responses: a round has at least one", rule="survey-counts")
    counts = {option: cmd.counts[option] for option in options}  # the scheme's order
    appraisal.record(Appraisal.SurveyRecorded, input=cmd.input, counts=counts, evidence=cmd.evidence,
                     **env.fields())
    ctx.stage(appraisal)
    return Accepted(appraisal.key)


def _person_only(appraisal: Appraisal, what: str) -> None:
    if appraisal.facts.kind != "person":
        raise DomainError("appraisal", f"{what} apply to person appraisals only; {appraisal.key} "
                          "is a department's", rule="person-only")


@handles(c.ApplyAdjustment)
def apply_adjustment(cmd: c.ApplyAdjustment, env: Envelope, ctx: Context) -> Accepted:
    appraisal, _, scheme = _appraisal(ctx, cmd.appraisal)
    _person_only(appraisal, "direct adjustments")
    if cmd.item not in scheme.adjustments:
        raise DomainError("item", f"{cmd.item!r} is not in the adjustment catalogue of {scheme.ref} "
                          f"(known: {', '.join(sorted(scheme.adjustments))})", rule="adjustment-catalogue")
    appraisal.record(Appraisal.AdjustmentApplied, item=cmd.item, evidence=cmd.evidence, **env.fields())
    ctx.stage(appraisal)
    return Accepted(appraisal.key)


@handles(c.ImposeVeto)
def impose_veto(cmd: c.ImposeVeto, env: Envelope, ctx: Context) -> Accepted:
    appraisal, _, scheme = _appraisal(ctx, cmd.appraisal)
    _person_only(appraisal, "vetoes")
    if cmd.reason not in scheme.vetoes:
        raise DomainError("reason", f"{cmd.reason!r} is not in the veto catalogue of {scheme.ref} "
                          f"(known: {', '.join(sorted(scheme.vetoes))})", rule="veto-catalogue")
    appraisal.record(Appraisal.VetoImposed, reason=cmd.reason, evidence=cmd.evidence, **env.fields())
    ctx.stage(appraisal)
    return Accepted(appraisal.key)


# --- appeals (SCORING.md §8) ---------------------------------------------------------------------


def appeal_deadline(item_at: datetime, first_publication: datetime | None, window_days: int) -> datetime:
    """When the appeal window of an item closes: 30 days (the scheme's window) from the later of
    the item's business time `item_at` and the year's first publication (None: not published
    yet). The one place of this rule: the handler below and the pages (api/pages) call it."""
    start = item_at if first_publication is None else max(item_at, first_publication)
    return start + timedelta(days=window_days)


@handles(c.FileAppeal)
def file_appeal(cmd: c.FileAppeal, env: Envelope, ctx: Context) -> Accepted:
    appraisal, year, scheme = _appraisal(ctx, cmd.appraisal)
    facts = appraisal.facts
    org = ctx.organisation()
    appellant = facts.subject.id
    if facts.kind == "department":
        appellant = (org.head_of(facts.subject.id) if org else None) or "(no head recorded)"
    if env.actor != appellant:
        raise DomainError("actor", f"only the subject ({appellant}) may appeal an item of {facts.key}",
                          rule="appeal-by-subject")
    item = facts.items.get(cmd.target)
    if item is None:
        raise NotFound("target", f"no item recorded on {facts.key} by command {cmd.target}",
                       rule="appeal-target")
    if not isinstance(item, f.APPEALABLE):
        raise DomainError("target", f"a {f.FACT_KINDS[type(item)]} cannot be appealed (only counted "
                          "items, measurements, survey rounds, direct deductions and vetoes)", rule="appeal-target")
    earlier = facts.appeal_of(cmd.target)
    if earlier is not None:
        raise Conflict("target", f"{cmd.target} was already appealed ({earlier.command_id})",
                       rule="one-appeal-per-item")
    if env.at < item.at:
        raise DomainError("at", "an appeal cannot precede the item it appeals", rule="appeal-window")
    first_publication = year.publications[0]["at"] if year.publications else None
    deadline = appeal_deadline(item.at, first_publication, scheme.appeal_window_days)
    if env.at > deadline:
        raise DomainError("at", f"the appeal window closed on {deadline.isoformat()} "
                          f"({scheme.appeal_window_days} days after the later of the item's recording "
                          "and the publication)", rule="appeal-window")
    appraisal.record(Appraisal.AppealFiled, target=cmd.target, grounds=cmd.grounds, **env.fields())
    ctx.stage(appraisal)
    return Accepted(facts.key)


@handles(c.DecideAppeal)
def decide_appeal(cmd: c.DecideAppeal, env: Envelope, ctx: Context) -> Accepted:
    located = ctx.command_target(cmd.appeal)
    if located is None or located[0] != "appeal.file":
        raise NotFound("appeal", f"no appeal filed by command {cmd.appeal}", rule="appeal-known")
    appraisal, _, scheme = _appraisal(ctx, located[1])
    facts = appraisal.facts
    appeal = facts.appeals.get(cmd.appeal)
    if appeal is None:  # a copy from before the appeal: a refusal, which is decided again on the log
        raise NotFound("appeal", f"no appeal filed by command {cmd.appeal}", rule="appeal-known")
    if cmd.appeal in facts.decisions:
        raise Conflict("appeal", f"{cmd.appeal} was already decided ({facts.decisions[cmd.appeal].ref})",
                       rule="one-decision")
    item = facts.items[appeal.target]
    if env.actor == item.actor:
        raise DomainError("actor", f"{env.actor} recorded the appealed item: the decision must come from "
                          "another admin", rule="independent-decision")
    if env.actor == appeal.actor:
        raise DomainError("actor", "the appellant cannot decide their own appeal", rule="independent-decision")
    if env.at < appeal.at:
        raise DomainError("at", "a decision cannot precede the appeal", rule="decision-time")
    points: Decimal | None = None
    if cmd.outcome == "amended":
        if not isinstance(item, f.AdjustmentFact):
            raise DomainError("outcome", "amended applies to direct deductions only; overturn or uphold "
                              "other items", rule="amend-deductions")
        if cmd.points is None:
            raise DomainError("points", "required for amended (signed like the catalogue's, e.g. \"-10\")",
                              rule="amend-deductions")
        original = scheme.adjustments[item.item].points
        if (cmd.points > 0 and original < 0) or (cmd.points < 0 and original > 0):
            raise DomainError("points", f"{cmd.points} has the wrong sign: amended points are signed like "
                              f"the catalogue's ({original})", rule="amend-deductions")
        if abs(cmd.points) > abs(original) if original < 0 else cmd.points < original:
            raise DomainError("points", f"{cmd.points} would be harsher than the original {original}: "
                              "an appeal never makes the outcome harsher", rule="never-harsher")
        points = cmd.points
    elif cmd.points is not None:
        raise DomainError("points", "only an amended outcome carries points", rule="amend-deductions")
    appraisal.record(Appraisal.AppealDecided, appeal=cmd.appeal, outcome=cmd.outcome, points=points,
                     reason=cmd.reason, **env.fields())
    ctx.stage(appraisal)
    return Accepted(facts.key)


# --- the year ------------------------------------------------------------------------------------


def _year(ctx: Context, number: int) -> Year:
    year = ctx.year(number)
    if year is None:
        raise NotFound("year", f"no appraisal is open for {number}", rule="year-open")
    return year


@handles(c.BreakTie)
def break_tie(cmd: c.BreakTie, env: Envelope, ctx: Context) -> Accepted:
    year = _year(ctx, cmd.year)
    if year.finalized:
        raise Conflict("year", f"year {cmd.year} is final", rule="year-final")
    if len(set(cmd.order)) != len(cmd.order):
        raise DomainError("order", "a person appears twice", rule="tie-break")
    for index, person in enumerate(cmd.order):
        if year.subjects.get(person) != "person":
            raise DomainError(f"order[{index}]", f"{person} has no person appraisal in {cmd.year}",
                              rule="tie-break")
    year.record(Year.TieBroken, order=list(cmd.order), reason=cmd.reason, **env.fields())
    ctx.stage(year)
    return Accepted(f"year:{cmd.year}")


@handles(c.PublishYear)
def publish_year(cmd: c.PublishYear, env: Envelope, ctx: Context) -> Accepted:
    year = _year(ctx, cmd.year)
    if year.finalized:
        raise Conflict("year", f"year {cmd.year} is final", rule="year-final")
    if year.publications:
        raise Conflict("year", f"year {cmd.year} is already published; later changes produce revised "
                       "publications", rule="publish-once")
    document = ctx.year_results(cmd.year)
    if document["unresolved_ties"]:
        tied = "; ".join(", ".join(t["people"]) for t in document["unresolved_ties"])
        raise DomainError("year", f"unresolved ties ({tied}): record a tie-break first", rule="publish-ready")
    incomplete = [d["id"] for d in document["departments"] if d["incomplete"]]
    incomplete += [p["id"] for p in document["people"] if p["incomplete"]]
    if incomplete:
        raise DomainError("year", f"incomplete appraisals: {', '.join(incomplete)}", rule="publish-ready")
    document = {**document, "status": "published", "publication": 1}
    year.record(Year.Published, document=document, digest=digest(document), **env.fields())
    ctx.stage(year)
    return Accepted(f"year:{cmd.year}")


def revise_publication(year_number: int, env: Envelope, ctx: Context, reason: str) -> bool:
    """SCORING.md §7: a change after publication produces a revised publication (a new version;
    the earlier ones stay readable), never an edit. Nothing is recorded when the figures did not
    move (an upheld appeal, say)."""
    year = ctx.year(year_number)
    if year is None or not year.publications or year.finalized:
        return False
    document = ctx.year_results(year_number)
    latest = year.publications[-1]["document"]
    unchanged = {k: v for k, v in latest.items() if k not in ("publication", "revision_reason")}
    if document == unchanged:
        return False
    document = {**document, "publication": len(year.publications) + 1, "revision_reason": reason}
    year.record(Year.Published, document=document, digest=digest(document), **env.fields())
    ctx.stage(year)
    return True


def working_days_after(start: datetime, days: int) -> datetime:
    """The end of the publicity period: `days` working days (Monday–Friday) after `start`."""
    moment, counted = start, 0
    while counted < days:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            counted += 1
    return moment


@handles(c.FinalizeYear)
def finalize_year(cmd: c.FinalizeYear, env: Envelope, ctx: Context) -> Accepted:
    year = _year(ctx, cmd.year)
    if year.finalized:
        raise Conflict("year", f"year {cmd.year} is already final", rule="year-final")
    if not year.publications:
        raise DomainError("year", f"year {cmd.year} is not published", rule="finalize-after-publicity")
    scheme = ctx.scheme(year.scheme_id, year.scheme_version)
    ends = working_days_after(year.publications[0]["at"], scheme.publicity_working_days)
    if env.at < ends:
        raise DomainError("at", f"the publicity period of {scheme.publicity_working_days} working days "
                          f"ends {ends.isoformat()}", rule="finalize-after-publicity")
    open_appeals = ctx.open_appeals(cmd.year)
    if open_appeals:
        raise DomainError("year", f"appeals still open: {', '.join(open_appeals)}", rule="finalize-after-appeals")
    year.record(Year.Finalized, digest=year.publications[-1]["digest"], **env.fields())
    ctx.stage(year)
    return Accepted(f"year:{cmd.year}")


@handles(c.AdoptScheme)
def adopt_scheme(cmd: c.AdoptScheme, env: Envelope, ctx: Context) -> Accepted:
    year = _year(ctx, cmd.year)
    if year.finalized:
        raise Conflict("year", f"year {cmd.year} is final", rule="year-final")
    if ctx.scheme_version(cmd.scheme.id, cmd.scheme.version) is None:
        raise NotFound("scheme", f"scheme {cmd.scheme.ref} is not published", rule="scheme-published")
    if (year.scheme_id, year.scheme_version) == (cmd.scheme.id, cmd.scheme.version):
        raise Conflict("scheme", f"year {cmd.year} already uses {cmd.scheme.ref}", rule="adopt-change")
    year.record(Year.SchemeAdopted, scheme_id=cmd.scheme.id, scheme_version=cmd.scheme.version,
                reason=cmd.reason, **env.fields())
    ctx.stage(year)
    return Accepted(f"year:{cmd.year}")
