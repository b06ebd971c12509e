"""Grading a year (SCORING.md §7): order, ranks, unresolved ties, tiers, grades, consequences,
and the department ranking with its staffing cut.

Every decision here is traced as figures on the subjects it concerns: a department's when it is
ranked (a dozen of them), a person's when asked (`person_figures`): a projection grades the whole
cohort after every batch of commands and shows the figures of the few whose placement moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from domain.numbers import (
    ZERO,
    exact,
    exact_text,
    round2,
    round_half_up_int,
    shown,
    shown_value,
)
from domain.scheme import Grade, Scheme, Tier
from domain.scoring import SubjectScore
from domain.trace import Figure, RuleRef, label

TOP_TIER_CONSEQUENCES = ("innovation_award_nomination", "promotion_priority")
BOTTOM_TIER_CONSEQUENCES = ("admonishment_talk", "off_post_training")
CONSECUTIVE_TOP = "staffing_allocation_preference"
CONSECUTIVE_YEARS = 3  # this year and the published results of the two before (§7)
STAFFING_CUT_RATE = Fraction(1, 10)  # the last-ranked department loses 10% of its posts (§7)


@dataclass(slots=True)
class Placement:
    """Where one person landed in the year's grading."""

    position: int | None = None
    rank: int | None = None
    tier: int | None = None
    grade: str | None = None
    coefficient: Decimal | None = None
    consequences: list[dict[str, Any]] = field(default_factory=list)
    unresolved_tie: list[str] | None = None
    tie_break: str | None = None


@dataclass(slots=True)
class DepartmentPlacement:
    rank: int
    consequences: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)  # the staffing cut, if any, then the rank


@dataclass(frozen=True, slots=True)
class Cohort:
    """What every person's grading figures show beside their own placement."""

    size: int
    vetoed: int
    history: dict[int, dict[str, int | None]]
    year: int
    params: dict[str, str]  # the grading parameters, the same for everyone placed


def order_key(score: SubjectScore, first_leaf: str) -> tuple[Any, ...]:
    """Rounded total, then rounded individual score, then rounded first leaf; vetoed last."""
    assert score.total is not None
    key = score.derived.get(("order", first_leaf))
    if key is None:
        key = score.derived[("order", first_leaf)] = (
            score.vetoed, -round2(score.total), -round2(score.score), -round2(score.leaves.get(first_leaf, ZERO)))
    return key


def bands(entries: Sequence[Tier | Grade], n: int, vetoed: int) -> list[Any]:
    """The tier or grade of each position 1..n: entries before the one without a share fill from
    the top, entries after it from the bottom (the bottom one taking at least the vetoed), and
    a bottom range overlapping a top one wins."""
    rest = next(i for i, entry in enumerate(entries) if entry.share is None)
    labels: list[Any] = [entries[rest].id] * n
    position = 0
    for entry in entries[:rest]:
        size = _floor(exact(entry.share) * n)  # type: ignore[arg-type]
        for p in range(position, min(n, position + size)):
            labels[p] = entry.id
        position += size
    end = n
    bottom = entries[rest + 1:]
    for index in range(len(bottom) - 1, -1, -1):
        entry = bottom[index]
        size = _floor(exact(entry.share) * n)  # type: ignore[arg-type]
        if index == len(bottom) - 1:
            size = max(size, vetoed)
        for p in range(max(0, end - size), end):
            labels[p] = entry.id
        end -= size
    return labels


def grade_people(scheme: Scheme, people: list[SubjectScore], tie_breaks: list[dict[str, Any]],
                 history: dict[int, dict[str, int | None]], year: int
                 ) -> tuple[dict[str, Placement], list[dict[str, Any]], Cohort]:
    """Place every person of the cohort; return placements, the unresolved ties, and what their
    figures show of the cohort (`person_figures`)."""
    first_leaf = next(iter(scheme.leaves("person"))).id
    order = {s.subject.id: order_key(s, first_leaf) for s in people}
    keyed = sorted(people, key=lambda s: (order[s.subject.id], s.subject.id))
    n = len(keyed)
    vetoed = sum(1 for s in keyed if s.vetoed)
    tiers = bands(scheme.grading.tiers, n, vetoed)
    grades = bands(scheme.grading.grades, n, vetoed)
    tier_by_id = {tier.id: tier for tier in scheme.grading.tiers}
    top_tier, bottom_tier = scheme.grading.tiers[0].id, scheme.grading.tiers[-1].id
    bottom_grade = scheme.grading.grades[-1].id

    groups: list[list[SubjectScore]] = []
    for score in keyed:
        if groups and order[groups[-1][0].subject.id] == order[score.subject.id]:
            groups[-1].append(score)
        else:
            groups.append([score])

    placements: dict[str, Placement] = {}
    unresolved: list[dict[str, Any]] = []
    start = 0
    for group in groups:
        span = range(start, start + len(group))
        ids = [s.subject.id for s in group]
        breaker = _tie_break_for(ids, tie_breaks) if len(group) > 1 else None
        straddles = len({tiers[p] for p in span}) > 1 or len({grades[p] for p in span}) > 1
        if breaker is not None:
            ordered = sorted(group, key=lambda s: breaker["order"].index(s.subject.id))
            for offset, score in enumerate(ordered):
                placements[score.subject.id] = Placement(position=start + offset + 1,
                                                         rank=start + offset + 1,
                                                         tie_break=breaker["ref"])
        elif straddles:
            total = group[0].total
            assert total is not None
            tied = sorted(ids)  # one list for the whole group: early in a year it is the whole cohort
            unresolved.append({"people": tied, "total": shown(total)})
            for score in group:
                placements[score.subject.id] = Placement(unresolved_tie=tied)
        else:
            for offset, score in enumerate(group):
                placements[score.subject.id] = Placement(position=start + offset + 1, rank=start + 1)
        start += len(group)

    for score in keyed:
        placement = placements[score.subject.id]
        if placement.position is None:
            continue
        index = placement.position - 1
        placement.tier = bottom_tier if score.vetoed else tiers[index]
        placement.grade = bottom_grade if score.vetoed else grades[index]
        placement.coefficient = tier_by_id[placement.tier].coefficient
        consequences: list[str] = []
        if placement.tier == top_tier:
            consequences += TOP_TIER_CONSEQUENCES
            if all(history.get(year - back, {}).get(score.subject.id) == top_tier
                   for back in range(1, CONSECUTIVE_YEARS)):
                consequences.append(CONSECUTIVE_TOP)
        if placement.tier == bottom_tier:
            consequences += BOTTOM_TIER_CONSEQUENCES
        placement.consequences = [{"type": kind} for kind in sorted(consequences)]
    unresolved.sort(key=lambda tie: (-shown_value(tie["total"]), tie["people"]))
    return placements, unresolved, Cohort(n, vetoed, history, year, _grading_params(scheme, n, vetoed))


def person_figures(scheme: Scheme, score: SubjectScore, placement: Placement, cohort: Cohort) -> list[Figure]:
    """The figures grading adds to a person's trace: rank, tier and grade, or the unresolved tie."""
    if placement.position is None:
        return [_unresolved_figure(scheme, score, placement)]
    return _placement_figures(scheme, score, placement, cohort)


def _tie_break_for(ids: list[str], tie_breaks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest recorded tie-break that orders every member of the group."""
    for breaker in reversed(tie_breaks):
        if all(member in breaker["order"] for member in ids):
            return breaker
    return None


def _grading_params(scheme: Scheme, n: int, vetoed: int) -> dict[str, str]:
    return {"cohort": str(n), "vetoed": str(vetoed),
            **{f"tier.{t.id}.share": exact_text(exact(t.share)) for t in scheme.grading.tiers if t.share},
            **{f"grade.{g.id}.share": exact_text(exact(g.share)) for g in scheme.grading.grades if g.share}}


def _placement_figures(scheme: Scheme, score: SubjectScore, placement: Placement, cohort: Cohort) -> list[Figure]:
    history, year, params = cohort.history, cohort.year, cohort.params
    notes = [f"position {placement.position} of {cohort.size}"]
    if placement.tie_break:
        notes.append(f"tie broken by {placement.tie_break}")
    if score.vetoed:
        notes.append("vetoed: tier and grade are the bottom ones regardless of score")
    if placement.tier == scheme.grading.tiers[0].id:
        past = {y: history.get(y, {}).get(score.subject.id) for y in (year - 1, year - 2)}
        notes.append("published tiers of the two previous years: "
                     + ", ".join(f"{y}: {t if t is not None else '—'}" for y, t in past.items()))
    return [
        Figure("rank", label(f"名次 {placement.rank}", f"rank {placement.rank}"), None,
               rule=RuleRef(scheme.ref, "order", "grading.order", "grading"),
               inputs={"rank": str(placement.rank), "total": score.shown_texts()["total"],
                       "individual": score.shown_texts()["score"]},
               notes=notes),
        Figure("tier", label(f"档次 {placement.tier}", f"tier {placement.tier}"), None,
               rule=RuleRef(scheme.ref, str(placement.tier), "grading.tier", "grading.tiers"),
               params=params,
               inputs={"tier": str(placement.tier), "coefficient": str(placement.coefficient)}),
        Figure("grade", label(f"等次 {placement.grade}", f"grade {placement.grade}"), None,
               rule=RuleRef(scheme.ref, str(placement.grade), "grading.grade", "grading.grades"),
               params=params,
               notes=[", ".join(c["type"] for c in placement.consequences) or "no consequences"]),
    ]


def _unresolved_figure(scheme: Scheme, score: SubjectScore, placement: Placement) -> Figure:
    return Figure(
        "rank", label("名次(并列待定)", "rank (unresolved tie)"), None,
        rule=RuleRef(scheme.ref, "order", "grading.unresolved_tie", "grading"),
        notes=["tied with " + ", ".join(p for p in placement.unresolved_tie or [] if p != score.subject.id)
               + " across a tier or grade boundary: no rank, tier, grade or consequences until an "
               "admin records a tie-break (year.tie_break)"],
    )


def rank_departments(scheme: Scheme, departments: list[SubjectScore]) -> dict[str, DepartmentPlacement]:
    """Rank by rounded score (equal scores share a rank); the last-ranked lose posts (§7)."""
    ordered = sorted(departments, key=lambda s: (-round2(s.score), s.subject.id))
    placements: dict[str, DepartmentPlacement] = {}
    for index, score in enumerate(ordered):
        if index and round2(ordered[index - 1].score) == round2(score.score):
            rank = placements[ordered[index - 1].subject.id].rank
        else:
            rank = index + 1
        placements[score.subject.id] = DepartmentPlacement(rank=rank)
    if len(ordered) >= 2:
        last_rank = max(p.rank for p in placements.values())
        for score in ordered:
            placement = placements[score.subject.id]
            if placement.rank != last_rank:
                continue
            posts_before = score.subject.approved_posts or 0
            cut = round_half_up_int(Fraction(posts_before) * STAFFING_CUT_RATE)
            if posts_before > 0:
                cut = max(cut, 1)
            placement.consequences.append({"type": "staffing_cut", "posts": cut})
            placement.figures.append(Figure(
                "staffing_cut", label("下年度核减编制", "staffing cut next year"), Fraction(cut),
                rule=RuleRef(scheme.ref, "staffing_cut", "grading.staffing_cut"),
                params={"rate": exact_text(STAFFING_CUT_RATE)},
                inputs={"approved_posts": str(posts_before)},
                notes=[f"ranked last ({last_rank} of {len(ordered)}): round half up of 10% of the "
                       "approved posts, at least 1 when there are any"],
            ))
    for score in ordered:
        rank = placements[score.subject.id].rank
        placements[score.subject.id].figures.append(Figure(
            "rank", label(f"部门名次 {rank}", f"department rank {rank}"), None,
            rule=RuleRef(scheme.ref, "department_order", "grading.department_rank"),
            inputs={"rank": str(rank), "score": shown(score.score)},
            notes=[f"of {len(ordered)} departments"]))
    return placements


def _floor(value: Fraction) -> int:
    return value.numerator // value.denominator
