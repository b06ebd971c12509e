"""What the pages show, shaped from the documents the queries answer (pure functions, no I/O),
and `kept`: what a page derives from something that never changes, kept for the next page.

Nothing here computes a score: every figure is read from the explanation's trace or the results
export. The only arithmetic is the itemised list's per-occurrence amount (`points_each × count`,
both read from the trace), which is how the trace's own figure is made.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from api.pages.labels import (
    APPEAL_STATUS,
    CONSEQUENCES,
    KINDS,
    OUTCOMES,
    POSITIONS,
    ROLES,
    RULE_TYPES,
    STATUS,
    TRACE_RULES,
    Labels,
    bilingual,
    label,
    note,
    struck_reason,
    zh,
)
from domain.handlers import appeal_deadline
from domain.times import OFFICE_TZ

APPEALABLE = frozenset({"occurrence", "measurement", "survey", "adjustment", "veto"})


# What a page derives from something that never changes is kept for the next page, the few most
# recent, by a key that names it: a publication by its digest (a 3,000-person year's document is a
# megabyte of JSON to read), a workbook by the digest of its inputs (api/pages/admin.py), the 公示's
# PDFs by the digest of the page they print (api/pages/notice.py, a `Kept` of their own). (A year
# looked back is kept beside the read side, for the API too: `Queries.year_at`.)
class Kept:
    """Values derived for the pages, kept by a key that names exactly what they are made of (a
    digest, or the things themselves), the `room` most recently used. `serial`: one is made at a
    time, and a request for the value being made waits for it rather than making it again (a PDF
    takes seconds, and at publication many people ask for the same pages)."""

    def __init__(self, room: int, *, serial: bool = False) -> None:
        self.room = room
        self._values: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._making = threading.Lock() if serial else None

    def __call__(self, key: tuple[str, ...], make: Callable[[], Any]) -> Any:
        found = self._get(key)
        if found is not _ABSENT:
            return found
        if self._making is None:
            return self._put(key, make())
        with self._making:
            found = self._get(key)  # made meanwhile
            return self._put(key, make()) if found is _ABSENT else found

    def _get(self, key: tuple[str, ...]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        return _ABSENT

    def _put(self, key: tuple[str, ...], value: Any) -> Any:
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.room:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_ABSENT = object()
kept = Kept(8)


def _decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def sign_class(value: Any) -> str:
    number = _decimal(value)
    if number is None or number == 0:
        return "zero"
    return "plus" if number > 0 else "minus"


def signed(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return str(value)
    return f"+{value}" if number > 0 else str(value)


def rule_text(figure: dict[str, Any]) -> str:
    """How a figure is made, by name (the rule's type; its id and place in the scheme are not words)."""
    rule_type = (figure.get("rule") or {}).get("type")
    return label(TRACE_RULES, rule_type) if rule_type else ""


def consequences_text(consequences: list[dict[str, Any]]) -> list[str]:
    texts = []
    for item in consequences:
        text = label(CONSEQUENCES, item.get("type"))
        if "posts" in item:
            text += f" {item['posts']} 名 posts"
        texts.append(text)
    return texts


# --- the year's results ---------------------------------------------------------------------------

def _order(person: dict[str, Any]) -> tuple[Any, ...]:
    """SCORING.md §7's order key as shown (rounded total, I, first leaf; vetoed last); the rank
    settles tie-breaks inside a group of equal keys."""
    leaves = list((person.get("leaves") or {}).values())
    first = _decimal(leaves[0]) if leaves else Decimal(0)
    return (bool(person.get("vetoed")), -(_decimal(person.get("total")) or 0),
            -(_decimal(person.get("individual_score")) or 0), -(first or 0),
            person.get("rank") or 10**9, person.get("id", ""))


PAGE_ROWS = 100  # people a page of a results table (a year may have thousands)


@dataclass(frozen=True)
class Rows:
    """Which people a results table shows: page `page` (of `PAGE_ROWS`) of those in `department`
    (an id; "" for all) whose name or id contains `q` ("" for all), in the order of the ranking.
    `base`: the page's path and the query it keeps (looking back: `as_of`, `known_at`). `everyone`:
    all on one page (the 公示, which pages its list itself)."""

    page: int = 1
    department: str = ""
    q: str = ""
    base: str = ""
    everyone: bool = False

    def query(self, **changes: Any) -> str:
        values = {"department": self.department, "q": self.q, "page": self.page, **changes}
        kept = {k: v for k, v in values.items() if v not in ("", None, 1)}
        joiner = "&" if "?" in self.base else "?"
        return self.base + (joiner + urlencode(kept) if kept else "")

    def pick(self, people: list[dict[str, Any]], labels: Labels) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The people of this page (`people` ranked), and the pager: how many in all, how many match,
        the pages and their links."""
        matched = people
        if self.department:
            matched = [p for p in matched if p.get("department") == self.department]
        needle = self.q.strip().casefold()
        if needle:
            matched = [p for p in matched if needle in f"{labels.person(p['id'])} {p['id']}".casefold()]
        size = max(1, len(matched)) if self.everyone else PAGE_ROWS
        pages = max(1, -(-len(matched) // size))
        number = min(max(self.page, 1), pages)
        shown = matched[(number - 1) * size:number * size]
        return shown, {
            "page": number, "pages": pages, "total": len(people), "matched": len(matched),
            "first": (number - 1) * size + 1 if shown else 0, "last": (number - 1) * size + len(shown),
            "department": self.department, "q": self.q, "action": self.base.split("?", 1)[0],
            "keep": [(k, v) for k, v in parse_qsl(self.base.partition("?")[2])],
            "filtered": bool(self.department or needle), "everyone": self.base or "?",
            "links": [{"number": n, "href": self.query(page=n), "current": n == number} for n in range(1, pages + 1)],
            "previous": self.query(page=number - 1) if number > 1 else None,
            "next": self.query(page=number + 1) if number < pages else None,
        }


def year_view(document: dict[str, Any], labels: Labels, ranking: list[dict[str, Any]],
              rows: Rows | None = None) -> dict[str, Any]:
    """The results table (`document`, as the viewer may see it) and the department ranking
    (`ranking`, rows of `Queries.department_ranking`): the people `rows` picks (one page of
    `PAGE_ROWS`, by default the first), only they shaped."""
    ties = document.get("unresolved_ties") or []
    tie_of = {person: index + 1 for index, tie in enumerate(ties) for person in tie.get("people", [])}
    chosen, pager = (rows or Rows()).pick(sorted(document.get("people", []), key=_order), labels)
    people = []
    for person in chosen:
        people.append({
            **person,
            "name": labels.person(person["id"]),
            "department_name": labels.department(person.get("department")),
            "department_zh": labels.department_zh(person.get("department")),
            "position_label": label(POSITIONS, person.get("position")),
            "position_zh": zh(label(POSITIONS, person.get("position"))),
            "tie": tie_of.get(person["id"]),
            "consequence_labels": consequences_text(person.get("consequences", [])),
            "consequence_zh": [zh(c) for c in consequences_text(person.get("consequences", []))],
            "href": f"/appraisals/{document['year']}:{person['id']}",
        })
    leaves = {d["id"]: d.get("leaves", {}) for d in document.get("departments", [])}
    departments = [{"id": row["department"], "rank": row.get("rank"), "score": row.get("score"),
                    "incomplete": row.get("incomplete"), "staffing_cut": row.get("staffing_cut"),
                    "leaves": leaves.get(row["department"], {}), "name": labels.department(row["department"]),
                    "href": f"/appraisals/{document['year']}:{row['department']}"} for row in ranking]
    leaf_names = labels.tree_order(k for p in document.get("people", []) for k in p.get("leaves", {}))
    dept_leaves = labels.tree_order(k for d in document.get("departments", []) for k in d.get("leaves", {}))
    return {
        "year": document["year"], "status": document.get("status", ""),
        "status_label": label(STATUS, document.get("status")),
        "scheme": f"{document['scheme']['id']}@{document['scheme']['version']}" if document.get("scheme") else "",
        "scheme_label": labels.scheme(document["scheme"]) if document.get("scheme") else "",
        "publication": document.get("publication"), "revision_reason": document.get("revision_reason"),
        "view": document.get("view"), "people": people, "pager": pager, "departments": departments,
        "department_choices": sorted(((d, labels.department(d)) for d in
                                      {p.get("department") for p in document.get("people", [])} - {None, ""}),
                                     key=lambda choice: choice[1]),
        "ties": [{"number": i + 1, "total": t.get("total"), "people": [labels.person(p) for p in t["people"]]}
                 for i, t in enumerate(ties)],
        "leaf_names": [(leaf, labels.node_names(leaf)) for leaf in leaf_names],
        "department_leaf_names": [(leaf, labels.node_names(leaf)) for leaf in dept_leaves],
    }


# --- an appraisal's explanation ----------------------------------------------------------------------

def beijing(moment: datetime | str | None) -> str:
    """A time as shown beside an item: Beijing time (UTC+8), to the minute ("" for none)."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        try:
            when = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    else:
        when = moment
    if when.utcoffset() is not None:
        when = when.astimezone(OFFICE_TZ)
    return when.strftime("%Y-%m-%d %H:%M")


def _ref_order(ref: str) -> tuple[str, int]:
    key, _, version = ref.rpartition("#")
    return (key, int(version)) if version.isdigit() else (ref, 0)


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A breakdown's item (加分/扣分明细 entry) in the shape of an explanation's event."""
    field = {"measurement": "input", "occurrence": "item", "survey": "input", "adjustment": "item",
             "veto": "reason"}.get(item["kind"])
    fact = {**item}
    if field:
        fact[field] = item.get("what")
    return fact


def with_struck_reasons(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every struck item's reason in Chinese and English (labels.struck_reason)."""
    def shown(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**entry, "why": struck_reason(entry.get("why"))} for entry in entries]
    return {**doc, "struck": shown(doc.get("struck", [])), "not_applicable": shown(doc.get("not_applicable", [])),
            "figures": [{**f, "struck": shown(f["struck"])} if f.get("struck") else f for f in doc.get("figures", [])]}


def with_notes(doc: dict[str, Any], labels: Labels) -> dict[str, Any]:
    """The document with its figures' notes and the reasons it is incomplete in words (labels.note)."""
    summary = doc.get("summary")
    if isinstance(summary, dict) and summary.get("incomplete"):
        summary = {**summary, "incomplete": [note(text, labels) for text in summary["incomplete"]]}
    return {**doc, **({"summary": summary} if summary is not None else {}),
            "figures": [{**f, "notes": [note(text, labels) for text in f["notes"]]} if f.get("notes") else f
                        for f in doc.get("figures", [])]}


class Explained:
    """One explanation (full or breakdown) shaped for the appraisal page."""

    def __init__(self, doc: dict[str, Any], labels: Labels, records: dict[str, dict[str, Any]] | None = None) -> None:
        """`records`: for a breakdown (whose items carry neither command ids nor who recorded
        them), each event's command id, actor, business and recording time by reference, from
        the appraisal's events as the viewer may read them (`routes.item_records`)."""
        doc = with_notes(with_struck_reasons(doc), labels)
        self.doc = doc
        self.labels = labels
        records = records or {}
        self.commands = {ref: r["command"] for ref, r in records.items() if r.get("command")}
        self.figures: dict[str, dict[str, Any]] = {f["key"]: f for f in doc.get("figures", [])}
        facts = [*doc.get("events", []), *map(_from_item, doc.get("items", [])), *doc.get("appeals", [])]
        facts = [{**{k: v for k, v in records.get(f["ref"], {}).items() if k != "command" and v is not None}, **f}
                 for f in facts]
        self.facts = sorted({f["ref"]: f for f in facts}.values(), key=lambda f: _ref_order(f["ref"]))
        self.events: dict[str, dict[str, Any]] = {f["ref"]: f for f in self.facts}
        self.appealed = {f.get("target") for f in self.facts if f.get("kind") == "appeal"}
        self.struck: dict[str, dict[str, Any]] = {s["ref"]: s for s in doc.get("struck", [])}
        for figure in doc.get("figures", []):
            for entry in figure.get("struck", []):
                self.struck.setdefault(entry["ref"], entry)

    def command(self, fact: dict[str, Any]) -> str | None:
        return fact.get("command") or self.commands.get(fact["ref"])

    # helpers
    def _names(self, mapping: dict[str, Any], rule_type: str = "") -> list[dict[str, str]]:
        return [dict(zip(("name", "value"), self.labels.parameter(key, value, rule_type), strict=True))
                for key, value in mapping.items()]

    def _struck_entries(self, figure: dict[str, Any]) -> list[dict[str, Any]]:
        return [{**entry, "event": self.events.get(entry["ref"])} for entry in figure.get("struck", [])]

    def event_refs(self, refs: list[str]) -> list[dict[str, Any]]:
        return [{"ref": ref, "visible": ref in self.events} for ref in refs]

    # summary and formula
    def subject(self) -> dict[str, Any]:
        subject = self.doc["subject"]
        return {**subject, "display_name": bilingual(subject.get("name"), subject["id"]),
                "scheme_label": self.labels.scheme(self.doc.get("scheme")),
                "position_label": label(POSITIONS, subject.get("position")),
                "department_name": self.labels.department(subject.get("department"))}

    def summary(self) -> dict[str, Any]:
        summary = dict(self.doc.get("summary", {}))
        summary["consequence_labels"] = consequences_text(summary.get("consequences", []))
        summary["status_label"] = label(STATUS, self.doc.get("status"))
        if summary.get("unresolved_tie"):
            summary["tie_names"] = [self.labels.person(p) for p in summary["unresolved_tie"]]
        return summary

    def formula(self) -> dict[str, Any] | None:
        """The total as its formula: `w_dep × D + w_ind × I + adjustments` (a person), or the sum
        of the department tree (a department)."""
        kind = self.doc["subject"]["kind"]
        top = self.figures.get("total" if kind == "person" else "department")
        if top is None:
            return None
        terms = []
        for term in top.get("terms", []):
            figure = self.figures.get(term["of"], {})
            href = None
            if term["of"] == "department_score":
                department = (figure.get("inputs") or {}).get("department")
                href = f"/appraisals/{self.doc['year']}:{department}" if department else None
            terms.append({"label": bilingual(figure.get("label")), "weight": term.get("weight"),
                          "value": figure.get("value"), "exact": figure.get("exact"), "href": href,
                          "weighted": term["of"] in ("department_score", "individual"),
                          "struck": bool(figure.get("struck"))})
        return {"label": bilingual(top.get("label")), "value": top.get("value"), "exact": top.get("exact"),
                "rule": rule_text(top), "terms": terms, "notes": top.get("notes", []),
                "bounds": top.get("bounds")}

    # the indicator tree
    def tree(self) -> dict[str, Any] | None:
        kind = self.doc["subject"]["kind"]
        root = self.figures.get("individual" if kind == "person" else "department")
        if root is None:
            return None
        return {"label": bilingual(root.get("label")), "value": root.get("value"), "exact": root.get("exact"),
                "rule": rule_text(root),
                "nodes": [self.node(t["of"]) for t in root.get("terms", []) if t["of"] in self.figures]}

    def node(self, key: str) -> dict[str, Any]:
        figure = self.figures[key]
        children, parts = [], []
        for term in figure.get("terms", []):
            child = self.figures.get(term["of"])
            if child is None:
                continue
            if term["of"].startswith("node:"):
                children.append(self.node(term["of"]))
            else:
                parts.append(self.part(child, key))
        return {"key": key, "id": key.split(":", 1)[1], "label": bilingual(figure.get("label")),
                "value": figure.get("value"), "exact": figure.get("exact"),
                "points": (figure.get("params") or {}).get("points"), "rule": rule_text(figure),
                "notes": figure.get("notes", []), "children": children, "parts": parts,
                "bounds": figure.get("bounds"), "struck": self._struck_entries(figure)}

    def part(self, figure: dict[str, Any], node_key: str) -> dict[str, Any]:
        params = {k: v for k, v in (figure.get("params") or {}).items() if k != "points"}
        rule_type = (figure.get("rule") or {}).get("type", "")
        periods = []
        if rule_type == "base.rating":
            weights = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("others.")}
            periods = [self.period(self.figures[t["of"]], weights, params.get("self"))
                       for t in figure.get("terms", []) if t["of"] in self.figures]
            leaf = node_key.split(":", 1)[1]
            periods += [self.period(f, weights, params.get("self")) for f in self.doc.get("figures", [])
                        if f["key"].startswith(f"period:{leaf}:") and f.get("value") is None]
        return {"key": figure["key"], "kind": figure["key"].split(":", 1)[0],
                "label": bilingual(figure.get("label")), "type_label": label(RULE_TYPES, rule_type)
                if rule_type in RULE_TYPES else "", "value": figure.get("value"), "exact": figure.get("exact"),
                "sign": sign_class(figure.get("value")), "rule": rule_text(figure),
                "shown": figure.get("value") if figure["key"].startswith("base:") else signed(figure.get("value")),
                "params": self._names(params, rule_type), "inputs": self._names(figure.get("inputs") or {}, rule_type),
                "notes": figure.get("notes", []), "events": self.event_refs(figure.get("events", [])),
                "periods": periods, "struck": self._struck_entries(figure)}

    def period(self, figure: dict[str, Any], weights: dict[str, str], self_share: str | None) -> dict[str, Any]:
        inputs = figure.get("inputs") or {}
        groups = []
        for key, mean in inputs.items():
            if not key.endswith(".mean"):
                continue
            role = key[: -len(".mean")]
            groups.append({"role": label(ROLES, role), "mean": mean, "raters": inputs.get(f"{role}.raters"),
                           "weight": self_share if role == "self" else weights.get(role)})
        groups.sort(key=lambda g: g["role"] != label(ROLES, "self"))
        withheld = bool(figure.get("withheld"))
        notes = [n for n in figure.get("notes", []) if not (withheld and n.startswith("means of rater groups"))]
        return {"period": figure["key"].rsplit(":", 1)[1], "value": figure.get("value"), "withheld": withheld,
                "all_withheld": bool(groups) and all(g["mean"] is None for g in groups),
                "exact": figure.get("exact"), "others": inputs.get("others"), "groups": groups,
                "missing": [label(ROLES, r) for r in weights if f"{r}.mean" not in inputs],
                "notes": notes, "events": self.event_refs(figure.get("events", []))}

    # the itemised list of additions and deductions
    def _parents(self) -> dict[str, str]:
        parents: dict[str, str] = {}
        for figure in self.doc.get("figures", []):
            for term in figure.get("terms", []):
                parents.setdefault(term["of"], figure["key"])
        return parents

    def _appeal_targets(self, refs: list[str]) -> list[dict[str, Any]]:
        targets = []
        for ref in refs:
            event = self.events.get(ref)
            command = self.command(event) if event else None
            if (event and command and event.get("kind") in APPEALABLE and ref not in self.struck
                    and command not in self.appealed):
                targets.append({"command": command, "ref": ref, "what": self.labels.item(event),
                                "kind": label(KINDS, event.get("kind")), "at": event.get("at")})
        return targets

    def _row(self, *, leaf: str, what: str, rule: str, points: Any, refs: list[str], struck: dict[str, Any] | None,
             note: str = "") -> dict[str, Any]:
        events = [self.events[r] for r in refs if r in self.events]
        dates = sorted(e.get("at", "") for e in events)
        evidence = [e["evidence"] for e in events if e.get("evidence")]
        appealed = [self._appeal_of(self.command(e)) for e in events if self.command(e) in self.appealed]
        recorders = [e for e in events if e.get("actor") and e.get("kind") != "rating"]
        return {"leaf": leaf, "what": what, "rule": rule, "points": signed(points) if points is not None else "—",
                "sign": sign_class(points), "refs": refs, "date": dates[-1][:10] if dates else "",
                "dates": list(dict.fromkeys(d[:10] for d in dates)), "evidence": "；".join(dict.fromkeys(evidence)),
                "recorded_by": sorted({e["actor"] for e in recorders}),
                "recorded": [{"ref": e["ref"], "actor": e["actor"], "name": self.labels.person(e["actor"]),
                              "at": beijing(e.get("at")), "recorded_at": beijing(e.get("recorded_at")),
                              "backdated": bool(e.get("backdated"))} for e in recorders],
                "commands": [c for c in (self.command(e) for e in events) if c],
                "struck": struck, "note": note, "appealed": [a for a in appealed if a],
                "appeal_targets": [] if struck else self._appeal_targets(refs)}

    def _appeal_of(self, command: str | None) -> dict[str, Any] | None:
        return next(({"ref": e["ref"], "command": self.command(e)} for e in self.facts
                     if e.get("kind") == "appeal" and e.get("target") == command), None)

    def itemised(self) -> list[dict[str, Any]]:
        """加分/扣分明细: every rule, direct adjustment and veto with the facts behind it, one row per
        counted item where a rule counts occurrences; struck facts stay, struck through."""
        parents = self._parents()
        rows: list[dict[str, Any]] = []
        for figure in self.doc.get("figures", []):
            key = figure["key"]
            kind = key.split(":", 1)[0]
            if kind == "rule":
                leaf_key = parents.get(key, "")
                leaf = bilingual(self.figures.get(leaf_key, {}).get("label"))
                params = figure.get("params") or {}
                rule_type = (figure.get("rule") or {}).get("type", "")
                rule = label(RULE_TYPES, rule_type)
                if rule_type == "per_occurrence":
                    each = _decimal(params.get("points_each"))
                    what = self.labels.input(params.get("input", ""))
                    for ref in figure.get("events", []):
                        count = _decimal((self.events.get(ref) or {}).get("count", 1)) or Decimal(1)
                        points = f"{each * count:.2f}" if each is not None and ref in self.events else None
                        rows.append(self._row(leaf=leaf, what=what, rule=rule, points=points, refs=[ref],
                                              struck=None))
                    for entry in figure.get("struck", []):
                        event = self.events.get(entry["ref"]) or {}
                        count = _decimal(event.get("count", 1)) or Decimal(1)
                        points = f"{each * count:.2f}" if each is not None and event else None
                        rows.append(self._row(leaf=leaf, what=what, rule=rule, points=points,
                                              refs=[entry["ref"]], struck=entry))
                    continue
                inputs = figure.get("inputs") or {}
                what = "；".join(f"{self.labels.input(k)} {v}" for k, v in inputs.items() if k in self.labels.inputs
                                or k in (params.get("input"), params.get("total"))) or rule
                rows.append(self._row(leaf=leaf, what=what, rule=rule, points=figure.get("value"),
                                      refs=list(figure.get("events", [])), struck=None,
                                      note="；".join(figure.get("notes", []))))
                for entry in figure.get("struck", []):
                    rows.append(self._row(leaf=leaf, what=self.labels.input(params.get("input", "")), rule=rule,
                                          points=None, refs=[entry["ref"]], struck=entry))
            elif kind in ("survey-round", "survey"):  # SCORING.md §12: each round, appealable like an item
                survey = self.figures.get(f"survey:{(figure.get('rule') or {}).get('id', '')}", figure)
                leaf, rule = bilingual(survey.get("label")), label(RULE_TYPES, "survey.round")
                if kind == "survey":  # the survey's totals: rounds, responses, weighted sum, rate
                    inputs = figure.get("inputs") or {}
                    what = "；".join(" ".join(str(part) for part in self.labels.parameter(key, inputs[key], "survey"))
                                    for key in ("rounds", "responses", "weighted", "rate") if key in inputs)
                    rows.append(self._row(leaf=leaf, what=what, rule=label(RULE_TYPES, "survey"), points=None,
                                          refs=[], struck=None, note="；".join(figure.get("notes", []))))
                if kind == "survey-round":
                    ref = figure["events"][0]
                    rows.append(self._row(leaf=leaf, what=self.event_detail(self.events.get(ref) or {}), rule=rule,
                                          points=None, refs=[ref], struck=None))
                for entry in figure.get("struck", []):
                    rows.append(self._row(leaf=leaf, what=self.event_detail(self.events.get(entry["ref"]) or {}),
                                          rule=rule, points=None, refs=[entry["ref"]], struck=entry))
            elif kind == "adjustment":
                item = (figure.get("rule") or {}).get("id", "")
                struck = (figure.get("struck") or [None])[0]
                rows.append(self._row(leaf="总分调整 total", what=self.labels.adjustment(item),
                                      rule=label(RULE_TYPES, "adjustment"),
                                      points=(figure.get("params") or {}).get("points") if struck
                                      else figure.get("value"),
                                      refs=list(figure.get("events", [])), struck=struck,
                                      note="；".join(figure.get("notes", []))))
            elif kind == "veto":
                reason = (figure.get("rule") or {}).get("id", "")
                struck = (figure.get("struck") or [None])[0]
                row = self._row(leaf="一票否决 veto", what=self.labels.veto(reason), rule=label(RULE_TYPES, "veto"),
                                points=None, refs=list(figure.get("events", [])), struck=struck,
                                note="；".join(figure.get("notes", [])))
                row["points"] = "否决 veto"
                row["sign"] = "minus"
                rows.append(row)
        return rows

    def adoptions(self) -> list[str]:
        """The year's switches of scheme version (`year.adopt`), in words: when, to and from which
        version by name, who and why."""
        lines = []
        for adoption in self.doc.get("adoptions") or []:
            if isinstance(adoption, str):
                lines.append(adoption)
                continue
            lines.append(f"{beijing(adoption.get('at'))} 采用 adopted {self.labels.scheme(adoption.get('to'))}"
                         f"（原为 was {self.labels.scheme(adoption.get('from'))}）· "
                         f"{self.labels.person(adoption.get('actor'))} · 理由 reason：{adoption.get('reason') or '—'}")
        return lines

    # struck items, events, trace
    def struck_items(self) -> list[dict[str, Any]]:
        return [{**entry, "kind_label": label(KINDS, entry.get("kind")), "event": self.events.get(entry["ref"])}
                for entry in self.doc.get("struck", [])]

    def not_applicable(self) -> list[dict[str, Any]]:
        return [{**entry, "kind_label": label(KINDS, entry.get("kind"))}
                for entry in self.doc.get("not_applicable", [])]

    def event_rows(self) -> list[dict[str, Any]]:
        rows = []
        for event in self.facts:
            rows.append({**event, "at": event.get("at") or "", "recorded_at": event.get("recorded_at") or "",
                         "actor": event.get("actor") or "", "command": self.command(event) or "",
                         "kind_label": label(KINDS, event.get("kind")), "detail": self.event_detail(event),
                         "struck": self.struck.get(event["ref"]),
                         "appeal_targets": self._appeal_targets([event["ref"]])})
        return rows

    def event_detail(self, event: dict[str, Any]) -> str:
        kind = event.get("kind")
        if kind == "rating":
            return (f"{self.labels.node(event.get('leaf', ''))} {event.get('period')} {label(ROLES, event.get('rater_role'))} "
                    f"{self.labels.person(event.get('rater'))} {event.get('score')}")
        if kind == "measurement":
            return f"{self.labels.input(event.get('input', ''))} = {event.get('value')}"
        if kind == "occurrence":
            return f"{self.labels.input(event.get('item', ''))} × {event.get('count', 1)}"
        if kind == "survey":
            counts = "，".join(f"{self.labels.option(option)} {count}"
                              for option, count in self.labels.in_option_order(event.get("counts") or {}))
            return f"{self.labels.input(event.get('input', ''))}: {counts}"
        if kind == "adjustment":
            return self.labels.adjustment(event.get("item", ""))
        if kind == "veto":
            return self.labels.veto(event.get("reason", ""))
        if kind == "appeal":
            grounds = f": {event['grounds']}" if event.get("grounds") else ""
            return f"申诉 appeal on {event.get('target')}{grounds}"
        if kind == "decision":
            points = f" → {event['points']}" if event.get("points") else ""
            return f"{event.get('appeal')}: {label(OUTCOMES, event.get('outcome'))}{points} — {event.get('reason', '')}"
        return ""


def appeal_windows(rows: list[dict[str, Any]], *, first_publication: str | None, window_days: int | None,
                   now: datetime, final: bool = False) -> list[dict[str, Any]]:
    """Each appeal target of the itemised `rows` with when its window closes (`deadline`, Beijing
    time), whether it is `open` at `now`, and whether a closed one opens again when the year is
    published (`reopens`). The deadline is the domain's (`domain.handlers.appeal_deadline`, the
    rule the appeal command is decided by): 30 days from the later of the item's business time
    and the year's first publication. Without a window (the scheme unknown) nothing is shown as
    closed; the command decides. A final year takes no appeal at all (`final`: every window closed)."""
    published = datetime.fromisoformat(first_publication) if first_publication else None
    for row in rows:
        for target in row["appeal_targets"]:
            if window_days is None or not target.get("at"):
                target.update(deadline="", open=not final, reopens=False, final=final)
                continue
            closes = appeal_deadline(datetime.fromisoformat(target["at"]), published, window_days)
            target.update(deadline=beijing(closes), open=now <= closes and not final,
                          reopens=published is None and now > closes and not final, final=final)
    return rows


def appeal_rows(appeals: list[dict[str, Any]], labels: Labels) -> list[dict[str, Any]]:
    rows = []
    for appeal in appeals:
        decision = appeal.get("decision")
        rows.append({**appeal, "status_label": label(APPEAL_STATUS, appeal.get("status")),
                     "target_label": label(KINDS, (appeal.get("target") or {}).get("kind")),
                     "appellant_name": labels.person(appeal.get("appellant")),
                     "decision_label": label(OUTCOMES, decision.get("outcome")) if decision else "",
                     "decider_name": labels.person(decision.get("actor")) if decision else ""})
    return rows
