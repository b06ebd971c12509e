"""Text renderings for people: the explanation of one appraisal, labels Chinese first with English."""

from __future__ import annotations

from typing import Any

POSITIONS = {
    "staff": "一般工作人员 staff",
    "department_head": "科室负责人 department head",
    "leader": "班子成员 leader",
    "superior": "上级领导 superior",
}
ROLES = {
    "self": "自评 self",
    "superior": "上级领导 superior",
    "in_charge": "分管领导 in charge",
    "leadership_team": "班子成员 leadership team",
    "department_head": "科室负责人 department head",
}
STATUS = {"provisional": "暂定 provisional", "published": "已公示 published", "final": "已定稿 final",
          "replay": "重算 replay"}


def _label(figure: dict[str, Any]) -> str:
    return f"{figure['label']['zh']} {figure['label']['en']}"


def _events(figure: dict[str, Any]) -> str:
    events = figure.get("events") or []
    return f"  ← {', '.join(events)}" if events else ""


def _rule(figure: dict[str, Any]) -> str:
    rule = figure.get("rule")
    if not rule:
        return ""
    where = f" {rule['path']}" if rule.get("path") else ""
    return f"[{rule['type']} {rule['id']} @ {rule['scheme']}{where}]"


def _kv(mapping: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items())


def explanation_text(doc: dict[str, Any]) -> str:
    figures = {f["key"]: f for f in doc["figures"]}
    subject = doc["subject"]
    name = subject["name"]
    lines = [
        f"考核 Appraisal {doc['appraisal']} — {name['zh']} {name['en'] if name['en'] != name['zh'] else ''}".rstrip(),
        f"  {'部门 department' if subject['kind'] == 'department' else POSITIONS.get(subject['position'] or '', '')}"
        + (f", {subject['department']}" if subject["kind"] == "person" else "")
        + f" · 方案 scheme {doc['scheme']} · 状态 status {STATUS.get(doc['status'], doc['status'])}",
        "",
    ]
    for adoption in doc.get("adoptions", []):  # SCORING.md §9: both versions and when the switch happened
        lines.insert(-1, f"  方案变更 scheme adopted {adoption['from']} → {adoption['to']} at {adoption['at'][:16]} "
                         f"by {adoption['actor']}: {adoption['reason']}")
    summary = doc["summary"]
    if subject["kind"] == "person":
        total = figures["total"]
        terms = " + ".join(
            f"{t['weight']} × {_label(figures[t['of']])} {figures[t['of']]['value']}"
            if t["of"] in ("department_score", "individual") else f"{_label(figures[t['of']])} {figures[t['of']]['value']}"
            for t in total.get("terms", [])
        )
        lines.append(f"总分 total {total['value']} (exact {total['exact']}) = {terms}  {_rule(total)}")
        lines += [f"    {note}" for note in total.get("notes", [])]
        if summary.get("unresolved_tie"):
            lines.append(f"名次 rank — 并列待定 unresolved tie with {', '.join(summary['unresolved_tie'])}")
        else:
            consequences = ", ".join(c["type"] for c in summary["consequences"]) or "—"
            lines.append(f"名次 rank {summary['rank']} · 档次 tier {summary['tier']} (系数 coefficient "
                         f"{summary['coefficient']}) · 等次 grade {summary['grade']} · 后果 consequences: {consequences}")
        if summary["vetoed"]:
            lines.append("一票否决 VETOED: grade D and tier 3 regardless of score")
        dep = figures["department_score"]
        lines.append(f"{_label(dep)} {dep['value']}{_events(dep)}")
        lines += [f"    {note}" for note in dep.get("notes", [])]
    else:
        consequences = ", ".join(
            c["type"] + (f" {c['posts']} posts" if "posts" in c else "") for c in summary["consequences"]) or "—"
        lines.append(f"部门得分 department score {summary['score']} · 名次 rank {summary['rank']} · "
                     f"后果 consequences: {consequences}")
    if summary["incomplete"]:
        lines.append("不完整 INCOMPLETE: " + "; ".join(summary["incomplete"]))
    lines.append("")

    tree = figures["individual" if subject["kind"] == "person" else "department"]
    lines.append(f"{_label(tree)} {tree['value']} = "
                 + " + ".join(f"{figures[t['of']]['label']['zh']} {figures[t['of']]['value']}" for t in tree["terms"]))
    for term in tree["terms"]:
        lines += _node_lines(figures, term["of"], 1)
    for key, figure in figures.items():
        if key.startswith(("adjustment:", "veto:")):
            lines.append("")
            value = f" {figure['value']}" if figure.get("value") is not None else ""
            lines.append(f"{_label(figure)}{value}  {_rule(figure)}{_events(figure)}")
            lines += [f"    {note}" for note in figure.get("notes", [])]
            lines += [f"    ~~struck~~ {s['ref']} ({s['command']}): {s['why']}" for s in figure.get("struck", [])]
    for key, title in (("staffing_cut", "核减编制 staffing cut"), ("rank", "排名依据 ranking"),
                       ("grade", "等次与后果 grade and consequences")):
        figure = figures.get(key)
        if figure and figure.get("notes"):
            lines.append(f"{title}: " + "; ".join(figure["notes"]) + f"  {_rule(figure)}")
    if doc["struck"]:
        lines += ["", "不计入的记录 struck items:"]
        lines += [f"  {s['ref']} {s['kind']} ({s['command']}): {s['why']}" for s in doc["struck"]]
    if doc["not_applicable"]:
        lines += ["", "不适用的记录 not applicable under this scheme:"]
        lines += [f"  {s['ref']} {s['kind']} ({s['command']}): {s['why']}" for s in doc["not_applicable"]]
    lines += ["", "事件 events (log order):"]
    for event in doc["events"]:
        # COMMANDS.md § Envelope: a business time more than 7 days before its recording is marked
        backdated = f"  [补录 back-dated: recorded {event['recorded_at'][:10]}]" if event.get("backdated") else ""
        lines.append("  " + _event_line(event) + backdated)
    return "\n".join(lines) + "\n"


def _node_lines(figures: dict[str, dict[str, Any]], key: str, depth: int) -> list[str]:
    figure = figures[key]
    pad = "  " * depth
    points = figure.get("params", {}).get("points", "")
    lines = [f"{pad}{_label(figure)} [{key.split(':', 1)[1]}] {figure['value']} / {points}  {_rule(figure)}"]
    lines += [f"{pad}    {note}" for note in figure.get("notes", [])]
    for term in figure.get("terms", []):
        child = figures[term["of"]]
        if term["of"].startswith("node:"):
            lines += _node_lines(figures, term["of"], depth + 1)
            continue
        lines.append(f"{pad}  {_label(child)} {child['value']} (exact {child['exact']})  {_rule(child)}")
        details = {**child.get("params", {}), **child.get("inputs", {})}
        details.pop("points", None)
        if details:
            lines.append(f"{pad}      {_kv(details)}")
        lines += [f"{pad}      {note}" for note in child.get("notes", [])]
        if child.get("events") and not term["of"].startswith("base:"):
            lines.append(f"{pad}      ← {', '.join(child['events'])}")
        lines += [f"{pad}      ~~struck~~ {s['ref']} ({s['command']}): {s['why']}" for s in child.get("struck", [])]
        for name, survey_key in child.get("inputs", {}).items():
            if name.endswith(".figure") and survey_key in figures:
                lines += _survey_lines(figures, figures[survey_key], pad + "      ")
        for period_term in child.get("terms", []):
            period = figures.get(period_term["of"])
            if period is None or not period_term["of"].startswith("period:"):
                continue
            groups = {k[:-5]: v for k, v in period.get("inputs", {}).items() if k.endswith(".mean")}
            parts = [f"{ROLES.get(role, role)} {value}" for role, value in groups.items()]
            lines.append(f"{pad}      期间 period {period['key'].rsplit(':', 1)[1]}: composite {period['exact']} "
                         f"(others {period['inputs'].get('others', '—')}; {'; '.join(parts)})"
                         f"{_events(period)}")
            lines += [f"{pad}        {note}" for note in period.get("notes", [])]
        if key.startswith("node:") and child.get("key", "").startswith("base:"):
            for skipped in (f for f in figures.values() if f["key"].startswith(f"period:{key[5:]}:")
                            and f.get("value") is None):
                lines.append(f"{pad}      期间 period {skipped['key'].rsplit(':', 1)[1]}: "
                             + "; ".join(skipped.get("notes", [])))
    return lines


def _survey_lines(figures: dict[str, dict[str, Any]], survey: dict[str, Any], pad: str) -> list[str]:
    """A survey input (SCORING.md §12): each round that counts, the totals, the rate, struck rounds."""
    inputs = survey.get("inputs", {})
    rate = f"{survey['value']} (exact {survey['exact']})" if survey.get("value") is not None else "缺失 missing"
    lines = [f"{pad}满意度测评 survey {_label(survey)}: 率 rate {rate} = 100 × 加权 weighted {inputs.get('weighted')}"
             f" / 答卷 responses {inputs.get('responses')} (min_responses {survey['params']['min_responses']})"
             f"  {_rule(survey)}"]
    for key, figure in figures.items():
        if key.startswith("survey-round:") and figure.get("events", [None])[0] in survey.get("events", []):
            round_inputs = figure.get("inputs", {})
            counts = ", ".join(f"{k[6:]} {v}" for k, v in round_inputs.items() if k.startswith("count."))
            evidence = f" ({round_inputs['evidence']})" if round_inputs.get("evidence") else ""
            lines.append(f"{pad}  轮次 round {key[13:]}: {counts} → {round_inputs['responses']} responses, "
                         f"weighted {figure['exact']}; 记录人 recorder {round_inputs['recorder']}, "
                         f"at {round_inputs['at'][:16]}, recorded {round_inputs['recorded_at'][:16]}{evidence}")
    lines += [f"{pad}  {note}" for note in survey.get("notes", [])]
    lines += [f"{pad}  ~~struck~~ {s['ref']} ({s['command']}): {s['why']}" for s in survey.get("struck", [])]
    return lines


def _event_line(event: dict[str, Any]) -> str:
    kind = event["kind"]
    head = f"{event['ref']:<16} {event['at'][:16]} {event['actor']:<18} {kind:<12}"
    if kind == "rating":
        return (f"{head} {event['leaf']} {event['period']} {ROLES.get(event['rater_role'], event['rater_role'])}"
                f" {event['rater']} {event['score']}")
    if kind == "measurement":
        return f"{head} {event['input']} = {event['value']}" + (f" ({event['evidence']})" if event.get("evidence") else "")
    if kind == "occurrence":
        return f"{head} {event['item']} × {event['count']}" + (f" ({event['evidence']})" if event.get("evidence") else "")
    if kind == "survey":
        counts = ", ".join(f"{option} {count}" for option, count in event["counts"].items())
        return f"{head} {event['input']}: {counts}" + (f" ({event['evidence']})" if event.get("evidence") else "")
    if kind == "adjustment":
        return f"{head} {event['item']}" + (f" ({event['evidence']})" if event.get("evidence") else "")
    if kind == "veto":
        return f"{head} {event['reason']}" + (f" ({event['evidence']})" if event.get("evidence") else "")
    if kind == "appeal":
        return f"{head} on {event['target']}: {event['grounds']}"
    if kind == "decision":
        points = f" points {event['points']}" if event.get("points") else ""
        return f"{head} {event['appeal']} → {event['outcome']}{points}: {event['reason']}"
    return head
