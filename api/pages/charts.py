"""Charts drawn on the server as SVG (issue 17, item 17: the networks are closed; no script, font
or style from anywhere else, nothing for the browser to compute).

Plain SVG text, not a charting library: pygal writes a `<style>` element and a `<script>` into
every chart, which the pages' Content-Security-Policy (`style-src 'self'`, no script) blocks
inline, and gives the chart no accessible name. Here every chart is an `<svg role="img">` named
by its `<title>` and described by its `<desc>` (every value in words), each point carries its
value as a `<title>`, colours and sizes are presentation attributes (allowed by the policy), and
the page puts the same figures in a table beside it.

Figures stay exact: values are Decimals, positions Fractions, written with one decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 320, 170
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 22, 30
INK, GRID, MUTED, LINE = "#222222", "#dddddd", "#555555", "#8b1a1a"


@dataclass(frozen=True)
class Series:
    """One chart: a value (or None: none that year) per year on an axis from `low` to `high`
    (`inverted`: `low` at the top, for ranks, tiers and grades where 1 and A are best).
    `ticks`: axis values with their labels; `shown`: each value as written beside its point."""

    key: str
    title: str  # the chart's accessible name, Chinese first
    years: Sequence[int]
    values: Sequence[Fraction | None]
    shown: Sequence[str]
    low: Fraction
    high: Fraction
    ticks: Sequence[tuple[Fraction, str]]
    inverted: bool = False


def _px(value: Fraction) -> str:
    """A position (or an axis value) with one decimal, rounded half up ("12" for 12.0)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal("0.1"), ROUND_HALF_UP)).removesuffix(".0")


def _x(series: Series, index: int) -> Fraction:
    inner = Fraction(WIDTH - LEFT - RIGHT)
    if len(series.years) == 1:
        return LEFT + inner / 2
    return LEFT + inner * index / (len(series.years) - 1)


def _y(series: Series, value: Fraction) -> Fraction:
    span = series.high - series.low or Fraction(1)
    share = (value - series.low) / span  # 0 at low, 1 at high
    inner = Fraction(HEIGHT - TOP - BOTTOM)
    return TOP + (share * inner if series.inverted else (1 - share) * inner)


def line_chart(series: Series) -> Markup:
    """The series as an accessible SVG line chart (a gap where a year has no value)."""
    ident = f"chart-{series.key}"
    described = "；".join(f"{year}: {text}" for year, text in zip(series.years, series.shown, strict=True))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'class="chart" data-chart="{escape(series.key)}" aria-labelledby="{ident}-title" aria-describedby="{ident}-desc" '
             f'font-family="sans-serif" font-size="11">',
             f'<title id="{ident}-title">{escape(series.title)}</title>',
             f'<desc id="{ident}-desc">{escape(described)}</desc>']
    for tick, text in series.ticks:  # the axis: grid lines and their labels
        y = _px(_y(series, tick))
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end" fill="{MUTED}">{escape(text)}</text>')
    for index, year in enumerate(series.years):
        parts.append(f'<text x="{_px(_x(series, index))}" y="{HEIGHT - 8}" text-anchor="middle" '
                     f'fill="{MUTED}">{year}</text>')
    runs: list[list[str]] = [[]]
    for index, known in enumerate(series.values):
        if known is None:
            runs.append([])
            continue
        runs[-1].append(f"{_px(_x(series, index))},{_px(_y(series, known))}")
    for run in runs:
        if len(run) > 1:
            parts.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="2" points="{" ".join(run)}"/>')
    for index, (value, text) in enumerate(zip(series.values, series.shown, strict=True)):
        if value is None:
            continue
        x, y = _px(_x(series, index)), _px(_y(series, value))
        parts.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{LINE}"><title>{series.years[index]}: '
                     f'{escape(text)}</title></circle>')
        parts.append(f'<text x="{x}" y="{y}" dy="-8" text-anchor="middle" fill="{INK}" '
                     f'font-weight="bold">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _number(text: object) -> Fraction | None:
    if text is None or text == "":
        return None
    try:
        return Fraction(Decimal(str(text)))
    except (ArithmeticError, ValueError):
        return None


GRADES = ("A", "B", "C", "D")  # the grades of the schemes (SCORING.md §7): A best


def history_series(years: Sequence[dict[str, object]]) -> list[Series]:
    """A person's years (rows of `Queries.person_history`, oldest first) as four charts: total,
    rank, tier and grade."""
    numbers = [int(str(row["year"])) for row in years]
    totals = [_number(row.get("total")) for row in years]
    known = [t for t in totals if t is not None] or [Fraction(0)]
    low = Fraction((min(known) // 10) * 10)
    high = Fraction(-((-max(known)) // 10) * 10)
    if high <= low:
        high = low + 10
    ranks = [_number(row.get("rank")) for row in years]
    worst = max([r for r in ranks if r is not None] or [Fraction(1)])
    tiers = [_number(row.get("tier")) for row in years]
    last_tier = max([Fraction(3), *(t for t in tiers if t is not None)])
    grades_seen = [str(row["grade"]) for row in years if row.get("grade")]
    scale = list(GRADES) + sorted(set(grades_seen) - set(GRADES))
    grades = [Fraction(scale.index(str(row["grade"]))) if row.get("grade") else None for row in years]

    def shown(values: Sequence[object]) -> list[str]:
        return ["—" if v is None or v == "" else str(v) for v in values]

    rank_ticks = [(Fraction(1), "1")] + ([(worst, str(worst))] if worst > 1 else [])
    return [
        Series("total", "总分 Total", numbers, totals, shown([row.get("total") for row in years]), low, high,
               [(low, str(low)), ((low + high) / 2, _px((low + high) / 2)), (high, str(high))]),
        Series("rank", "名次 Rank（1 为最好 1 is best）", numbers, ranks, shown([row.get("rank") for row in years]),
               Fraction(1), max(worst, Fraction(2)), rank_ticks, inverted=True),
        Series("tier", "档次 Tier（1 为最好 1 is best）", numbers, tiers, shown([row.get("tier") for row in years]),
               Fraction(1), last_tier, [(Fraction(t), str(t)) for t in range(1, int(last_tier) + 1)], inverted=True),
        Series("grade", "等次 Grade（A 为最好 A is best）", numbers, grades,
               shown([row.get("grade") for row in years]), Fraction(0), Fraction(len(scale) - 1),
               [(Fraction(i), g) for i, g in enumerate(scale)], inverted=True),
    ]
