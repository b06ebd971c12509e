"""What changed between two versions of a scheme (SCORING.md §9): a readable, ordered list.

`diff_schemes(old, new)` compares two validated schemes part by part — identity, composition
weights, rater shares and role weights, inputs, both indicator trees (nodes added, removed,
moved, points, bases, rule parameters), the adjustment and veto catalogues, grading, deadlines —
and returns one `Change` per differing value, with the path in the document (ids, not list
positions, so a moved node is one change rather than many), the old and new values as text and a
label in Chinese and English. Numbers are compared as numbers: "0.5" and "0.50" are the same.
Nothing here reads a store: replay reports and the command line both call it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.numbers import decimal_text
from domain.scheme import Names, Node, Scheme

POSITIONS = {"staff": "工作人员 staff", "department_head": "科室负责人 department head"}
SUBJECTS = {"department": "部门 department", **POSITIONS}
ROLES = {
    "self": "自评 self", "superior": "上级领导 superior", "in_charge": "分管领导 leader in charge",
    "leadership_team": "班子成员 leadership team", "department_head": "科室负责人 department head",
}
PARTS = {"department": "部门得分 department score", "individual": "个人得分 individual score"}
TREES = {"department": "部门指标 department indicators", "individual": "个人指标 individual indicators"}
RULE_PARAMETERS = {
    "type": "规则类型 rule type", "input": "读取输入 input", "total": "总数输入 total input",
    "target": "目标值 target", "points_per_unit": "每单位扣分 points per unit",
    "points_each": "每次分值 points each", "allowance_rate": "容错率 allowance rate (%)",
    "minimum": "最低数量 minimum", "penalty": "未达扣分 penalty",
}
BASE_PARAMETERS = {"type": "基础分类型 base type", "input": "比例输入 proportional input",
                   "target": "比例目标 proportional target"}
INPUT_FIELDS = {"kind": "类型 kind", "unit": "单位 unit", "required": "必填 required",
                "min_responses": "最少答卷数 min responses"}
CATEGORIES = ("identity", "composition", "raters", "inputs", "department", "individual",
              "adjustments", "vetoes", "grading", "deadlines")


@dataclass(frozen=True, slots=True)
class Change:
    """One value that differs between two scheme versions."""

    category: str  # one of CATEGORIES
    path: str  # where it stands in the document, by ids: "individual.discipline.rules.absences.points_each"
    old: str | None  # None: not in the old version (added)
    new: str | None  # None: not in the new version (removed)
    label: str  # Chinese first, then English

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "path": self.path, "kind": self.kind, "old": self.old,
                "new": self.new, "label": self.label}

    def text(self) -> str:
        return f"{self.label}: {_shown(self.old)} → {_shown(self.new)}  [{self.path}]"


def diff_schemes(old: Scheme, new: Scheme) -> list[Change]:
    """Every difference between two scheme versions, in document order."""
    return [*_identity(old, new), *_composition(old, new), *_raters(old, new), *_inputs(old, new),
            *_tree("department", old, new), *_tree("individual", old, new), *_adjustments(old, new),
            *_vetoes(old, new), *_grading(old, new), *_deadlines(old, new)]


def diff_document(old: Scheme, new: Scheme) -> dict[str, Any]:
    """The diff as data: both references and the changes (what `scheme diff --format json` prints)."""
    return {"old": old.ref, "new": new.ref, "supersedes": new.supersedes, "reason": new.reason,
            "changes": [change.as_dict() for change in diff_schemes(old, new)]}


def diff_text(old: Scheme, new: Scheme) -> str:
    """The diff for people: one line per change, grouped by part of the scheme."""
    changes = diff_schemes(old, new)
    lines = [f"方案差异 scheme diff {old.ref} → {new.ref}"]
    if new.supersedes is not None:
        lines.append(f"  {new.ref} 取代 supersedes {new.id}@{new.supersedes}: {new.reason or ''}")
    if not changes:
        lines.append("  无差异 no differences")
    category = None
    for change in changes:
        if change.category != category:
            category = change.category
            lines.append(f"[{category}]")
        lines.append(f"  {change.text()}")
    return "\n".join(lines) + "\n"


# --- parts ------------------------------------------------------------------------------------------


def _identity(old: Scheme, new: Scheme) -> Iterator[Change]:
    yield from _value("identity", "name", "方案名称 name", _names(old.name), _names(new.name))
    yield from _value("identity", "supersedes", "取代版本 supersedes",
                      _int(old.supersedes), _int(new.supersedes))
    yield from _value("identity", "reason", "修订理由 reason", old.reason, new.reason)


def _composition(old: Scheme, new: Scheme) -> Iterator[Change]:
    for position in _keys(old.composition, new.composition):
        was, now = old.composition.get(position), new.composition.get(position)  # type: ignore[call-overload]
        for part in ("department", "individual"):
            yield from _number("composition", f"composition.{position}.{part}",
                               f"总分构成 composition weight · {POSITIONS.get(position, position)} · {PARTS[part]}",
                               getattr(was, part, None), getattr(now, part, None))


def _raters(old: Scheme, new: Scheme) -> Iterator[Change]:
    for subject in _keys(old.raters, new.raters):
        was, now = old.raters.get(subject), new.raters.get(subject)  # type: ignore[call-overload]
        who = SUBJECTS.get(subject, subject)
        yield from _number("raters", f"raters.{subject}.self", f"自评占比 self share · {who}",
                           was.self_share if was else None, now.self_share if now else None)
        was_others = was.others if was else {}
        now_others = now.others if now else {}
        for role in _keys(was_others, now_others):
            yield from _number("raters", f"raters.{subject}.others.{role}",
                               f"他评角色权重 rater role weight · {who} · {ROLES.get(role, role)}",
                               was_others.get(role), now_others.get(role))


def _inputs(old: Scheme, new: Scheme) -> Iterator[Change]:
    for name in _keys(old.inputs, new.inputs):
        was, now = old.inputs.get(name), new.inputs.get(name)
        title = (now or was).name.label()  # type: ignore[union-attr]
        if was is None or now is None:
            yield from _presence("inputs", f"inputs.{name}", f"输入项 input · {title}",
                                 _input_summary(was) if was else None, _input_summary(now) if now else None)
            continue
        for field_name, field_label in INPUT_FIELDS.items():
            yield from _value("inputs", f"inputs.{name}.{field_name}", f"输入项 input · {title} · {field_label}",
                              _text(getattr(was, field_name)), _text(getattr(now, field_name)))
        yield from _value("inputs", f"inputs.{name}.name", f"输入项名称 input name · {name}",
                          _names(was.name), _names(now.name))
        yield from _options(name, title, was.options or [], now.options or [])


def _options(name: str, title: str, was: list[Any], now: list[Any]) -> Iterator[Change]:
    """A survey's options (SCORING.md §12), by id: added, removed, re-weighted, renamed, reordered."""
    was_options = {option.id: option for option in was}
    now_options = {option.id: option for option in now}
    for option_id in _keys(was_options, now_options):
        before, after = was_options.get(option_id), now_options.get(option_id)
        path = f"inputs.{name}.options.{option_id}"
        label = f"输入项 input · {title} · 选项 option {option_id}"
        if before is None or after is None:
            yield from _presence("inputs", path, label, _option_summary(before), _option_summary(after))
            continue
        yield from _number("inputs", f"{path}.weight", f"{label} · 权重 weight", before.weight, after.weight)
        yield from _value("inputs", f"{path}.name", f"{label} · 名称 name", _names(before.name), _names(after.name))
    shared = [option_id for option_id in was_options if option_id in now_options]
    if shared != [option_id for option_id in now_options if option_id in was_options]:
        yield Change("inputs", f"inputs.{name}.options.order", ", ".join(was_options), ", ".join(now_options),
                     f"输入项 input · {title} · 选项顺序 order of the options")


def _option_summary(option: Any) -> str | None:
    return None if option is None else f"{option.name.label()}, weight {decimal_text(option.weight)}"


def _tree(tree: str, old: Scheme, new: Scheme) -> Iterator[Change]:
    was_nodes, now_nodes = _nodes(old.tree(tree)), _nodes(new.tree(tree))
    heading = TREES[tree]
    was_top = [node.id for node in old.tree(tree)]
    now_top = [node.id for node in new.tree(tree)]
    for node_id in _keys(was_nodes, now_nodes):
        was, now = was_nodes.get(node_id), now_nodes.get(node_id)
        path = f"{tree}.{node_id}"
        if was is None or now is None:
            yield from _presence(tree, path, f"{heading} · 指标 node {_node_title(was or now)}",  # type: ignore[arg-type]
                                 _node_summary(*was) if was else None, _node_summary(*now) if now else None)
            continue
        (was_node, was_parent), (now_node, now_parent) = was, now
        title = f"{heading} · {_node_title(was)}"
        yield from _value(tree, f"{path}.parent", f"{title} · 上级指标 parent", was_parent or "(top)",
                          now_parent or "(top)")
        yield from _value(tree, f"{path}.name", f"{title} · 名称 name", _names(was_node.name), _names(now_node.name))
        yield from _number(tree, f"{path}.points", f"{title} · 分值 points", was_node.points, now_node.points)
        yield from _value(tree, f"{path}.children", f"{title} · 下级指标 children",
                          _ids(was_node.children), _ids(now_node.children))
        if was_node.is_leaf or now_node.is_leaf:
            yield from _base(tree, path, title, was_node, now_node)
            yield from _rules(tree, path, title, was_node, now_node)
    if [i for i in was_top if i in now_top] != [i for i in now_top if i in was_top]:
        yield Change(tree, f"{tree}.order", ", ".join(was_top), ", ".join(now_top),
                     f"{heading} · 顺序 order of the top-level nodes (the first leaf breaks ties)")


def _base(tree: str, path: str, title: str, was: Node, now: Node) -> Iterator[Change]:
    was_base = was.base.model_dump(mode="json") if was.base else {}
    now_base = now.base.model_dump(mode="json") if now.base else {}
    for key in _keys(was_base, now_base):
        yield from _value(tree, f"{path}.base.{key}", f"{title} · {BASE_PARAMETERS.get(key, key)}",
                          _json_text(was_base.get(key)), _json_text(now_base.get(key)), numeric=key == "target")


def _rules(tree: str, path: str, title: str, was: Node, now: Node) -> Iterator[Change]:
    was_rules = {rule.id: rule.model_dump(mode="json") for rule in was.rules}
    now_rules = {rule.id: rule.model_dump(mode="json") for rule in now.rules}
    for rule_id in _keys(was_rules, now_rules):
        old_rule, new_rule = was_rules.get(rule_id), now_rules.get(rule_id)
        rule_path = f"{path}.rules.{rule_id}"
        if old_rule is None or new_rule is None:
            yield from _presence(tree, rule_path, f"{title} · 规则 rule {rule_id}",
                                 _rule_summary(old_rule) if old_rule else None,
                                 _rule_summary(new_rule) if new_rule else None)
            continue
        for key in _keys(old_rule, new_rule):
            if key == "id":
                continue
            yield from _value(tree, f"{rule_path}.{key}",
                              f"{title} · 规则 rule {rule_id} · {RULE_PARAMETERS.get(key, key)}",
                              _json_text(old_rule.get(key)), _json_text(new_rule.get(key)),
                              numeric=key not in ("type", "input", "total"))


def _adjustments(old: Scheme, new: Scheme) -> Iterator[Change]:
    for item in _keys(old.adjustments, new.adjustments):
        was, now = old.adjustments.get(item), new.adjustments.get(item)
        title = f"加减分项目 adjustment · {(now or was).name.label()}"  # type: ignore[union-attr]
        if was is None or now is None:
            yield from _presence("adjustments", f"adjustments.{item}", title,
                                 decimal_text(was.points) if was else None, decimal_text(now.points) if now else None)
            continue
        yield from _number("adjustments", f"adjustments.{item}.points", f"{title} · 分值 points", was.points, now.points)
        yield from _value("adjustments", f"adjustments.{item}.name", f"{title} · 名称 name",
                          _names(was.name), _names(now.name))


def _vetoes(old: Scheme, new: Scheme) -> Iterator[Change]:
    for reason in _keys(old.vetoes, new.vetoes):
        was, now = old.vetoes.get(reason), new.vetoes.get(reason)
        title = f"一票否决事由 veto reason · {reason}"
        yield from _value("vetoes", f"vetoes.{reason}", title, _names(was.name) if was else None,
                          _names(now.name) if now else None)


def _grading(old: Scheme, new: Scheme) -> Iterator[Change]:
    yield from _value("grading", "grading.share_rounding", "比例取整 share rounding",
                      old.grading.share_rounding, new.grading.share_rounding)
    for part, heading in (("tiers", "档次 tier"), ("grades", "等次 grade")):
        was = {str(entry.id): entry for entry in getattr(old.grading, part)}
        now = {str(entry.id): entry for entry in getattr(new.grading, part)}
        for entry_id in _keys(was, now):
            before, after = was.get(entry_id), now.get(entry_id)
            path = f"grading.{part}.{entry_id}"
            if before is None or after is None:
                yield from _presence("grading", path, f"{heading} {entry_id}",
                                     _entry_summary(before), _entry_summary(after))
                continue
            yield from _share("grading", f"{path}.share", f"{heading} {entry_id} · 比例 share",
                              before.share, after.share)
            if part == "tiers":
                yield from _number("grading", f"{path}.coefficient", f"{heading} {entry_id} · 系数 coefficient",
                                   before.coefficient, after.coefficient)  # type: ignore[union-attr]
        if list(was) != list(now) and set(was) == set(now):
            yield Change("grading", f"grading.{part}.order", ", ".join(was), ", ".join(now),
                         f"{heading} · 顺序 order (top to bottom)")


def _deadlines(old: Scheme, new: Scheme) -> Iterator[Change]:
    yield from _value("deadlines", "appeal_window_days", "申诉期限(天) appeal window (days)",
                      str(old.appeal_window_days), str(new.appeal_window_days))
    yield from _value("deadlines", "publicity_working_days", "公示期(工作日) publicity period (working days)",
                      str(old.publicity_working_days), str(new.publicity_working_days))


# --- helpers ----------------------------------------------------------------------------------------


def _value(category: str, path: str, label: str, old: str | None, new: str | None, *,
           numeric: bool = False) -> Iterator[Change]:
    if old == new:
        return
    if numeric and old is not None and new is not None and Decimal(old) == Decimal(new):
        return
    yield Change(category, path, old, new, label)


def _number(category: str, path: str, label: str, old: Decimal | None, new: Decimal | None) -> Iterator[Change]:
    if old is not None and new is not None and old == new:
        return
    if old is None and new is None:
        return
    yield Change(category, path, _decimal(old), _decimal(new), label)


def _share(category: str, path: str, label: str, old: Decimal | None, new: Decimal | None) -> Iterator[Change]:
    """A grading share: absent means the entry takes the rest, which is a value, not a removal."""
    if old == new:
        return
    yield Change(category, path, _decimal(old) if old is not None else "rest 其余",
                 _decimal(new) if new is not None else "rest 其余", label)


def _presence(category: str, path: str, label: str, old: str | None, new: str | None) -> Iterator[Change]:
    action = "新增 added" if old is None else "删除 removed"
    yield Change(category, path, old, new, f"{label} ({action})")


def _keys(first: dict[Any, Any], second: dict[Any, Any]) -> list[Any]:
    """Keys of both, in the first's order, then the ones only the second has, in its order."""
    return [*first, *(key for key in second if key not in first)]


def _nodes(nodes: list[Node]) -> dict[str, tuple[Node, str | None]]:
    found: dict[str, tuple[Node, str | None]] = {}

    def visit(node: Node, parent: str | None) -> None:
        found[node.id] = (node, parent)
        for child in node.children or ():
            visit(child, node.id)

    for node in nodes:
        visit(node, None)
    return found


def _node_title(entry: tuple[Node, str | None]) -> str:
    node = entry[0]
    return f"{node.name.zh} {node.id}"


def _node_summary(node: Node, parent: str | None) -> str:
    where = f" under {parent}" if parent else ""
    if node.children is not None:
        return f"{decimal_text(node.points)} points{where}, children {_ids(node.children)}"
    base = node.base.type if node.base else "?"
    rules = ", ".join(rule.id for rule in node.rules)
    return f"{decimal_text(node.points)} points{where}, base {base}" + (f", rules {rules}" if rules else "")


def _rule_summary(rule: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in rule.items() if key != "id")


def _input_summary(declared: Any) -> str:
    parts = [declared.kind] + ([declared.unit] if declared.unit else []) + (["required"] if declared.required else [])
    survey = []  # SCORING.md §12
    if declared.options:
        survey.append("options " + ", ".join(f"{o.id} {decimal_text(o.weight)}" for o in declared.options))
    if declared.min_responses is not None:
        survey.append(f"min_responses {declared.min_responses}")
    return "; ".join([" ".join(parts), *survey])


def _entry_summary(entry: Any) -> str | None:
    if entry is None:
        return None
    share = decimal_text(entry.share) if entry.share is not None else "rest 其余"
    coefficient = getattr(entry, "coefficient", None)
    return f"share {share}" + (f", coefficient {decimal_text(coefficient)}" if coefficient is not None else "")


def _ids(nodes: list[Node] | None) -> str | None:
    return None if nodes is None else ", ".join(node.id for node in nodes)


def _names(names: Names) -> str:
    return names.label()


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _int(value: int | None) -> str | None:
    return None if value is None else str(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_text(value: Any) -> str | None:
    return _text(value)


def _shown(value: str | None) -> str:
    return "—" if value is None else value
