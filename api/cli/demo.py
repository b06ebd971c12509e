"""A deterministic, realistic appraisal year as batch-import commands (JSON Lines of COMMANDS.md).

`demo_commands` builds the commands of one year under the builtin scheme `bianban` v1: the
organisation, the opening of every appraisal, the ratings of every rating leaf by every rater
SCORING.md §5 allows, the year's measurements and counted items, and a few special cases (a
replaced rating, a direct deduction appealed and overturned, a veto, an absence appealed and
upheld). The same seed always gives the same list; nothing reads the clock.

Business times (`at`) run through the year and never decrease in list order:
- the scheme, the organisation and the openings: the first working day from 2 January;
- monthly ratings: the last five working days of their month; weekly ratings: the Thursday or
  Friday of their ISO week; annual ratings: 15–30 December;
- measurements: 8–12 December; counted items, the deduction, the veto and the appeals: during
  the year (each appeal within 30 days of its item, each decision within 30 days of its appeal).

Periods: `monthly` rates `business` per month (`"2025-01"`…) and `innovation` / `reform_tasks`
once for the year (`"2025"`); `weekly` rates `business` per ISO week (`"2025-W01"`…, as many weeks
as the ISO year has) and `innovation` / `reform_tasks` per month. The weekly mode exists for
benchmarks: about 190 ratings per staff member and 380 per department head.

Id scheme: leaders `p-L1`…`p-L4`, superior `p-S1`, departments `d-01`…, then per department its
head followed by its staff (`p-001` head of `d-01`, `p-002`… its staff, and so on).

The leaf and input ids below are those of `bianban` v1, the scheme the first command publishes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from os import PathLike
from pathlib import Path
from typing import Any

from domain.times import OFFICE_TZ

SCHEME = {"id": "bianban", "version": 1}
LEADER_COUNT = 4
WORKDAY_START = time(9, 0)
WORKDAY_SECONDS = 8 * 3600 + 1800  # 09:00-17:30
APPEAL_WINDOW_DAYS = 30
REPLACED_RATINGS = 3

ADMIN = "admin"
RECORDER = "hr-office"
DISCIPLINE = "discipline-office"
DECIDER = "admin-2"

SECTIONS = [
    ("机构编制科", "Institutional Staffing Section"),
    ("行政机构编制科", "Administrative Bodies Staffing Section"),
    ("事业单位机构编制科", "Public Institutions Staffing Section"),
    ("体制改革科", "Institutional Reform Section"),
    ("政策法规科", "Policy and Regulations Section"),
    ("监督检查科", "Supervision and Inspection Section"),
    ("编制实名制管理科", "Real-Name Staffing Records Section"),
    ("事业单位登记管理科", "Public Institution Registration Section"),
    ("机构编制评估科", "Staffing Evaluation Section"),
    ("社会事业机构编制科", "Social Services Staffing Section"),
    ("经济机构编制科", "Economic Bodies Staffing Section"),
    ("综合科", "General Affairs Section"),
    ("信息化管理科", "Information Management Section"),
    ("秘书科", "Secretariat Section"),
]
CN_ORDINALS = "一二三四五六七八九十"

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
)
GIVEN_CHARS = (
    "晓明伟芳娜敏静丽强磊军洋勇艳杰娟涛超秀霞平刚英华玉萍红鹏辉丹玲飞建国文斌宇浩凯俊帆欣怡佳"
    "琪雪婷颖晨阳琳志海峰亮波宁新春梅兰云莉燕慧思雨博子涵泽轩然嘉诗梦瑶雅蕾晶妍倩璐旭东林岩松"
    "冬立成晖卫荣祥龙元庆"
)

BUREAUS = ["市教育局", "市卫生健康委", "市人力资源社会保障局", "市财政局", "市司法局",
           "市农业农村局", "市市场监管局", "市民政局"]
MATTERS = ["编制核定会商", "职责边界协调", "机构改革方案会签", "事业单位登记联合审核",
           "编制调剂意见征求"]
REPORT_TOPICS = [
    "关于乡镇机构编制资源统筹使用的调研", "关于事业单位分类改革后续问题的思考",
    "关于开发区管理机构规范设置的调研", "关于编制周转池运行情况的调研报告",
    "关于基层综合执法队伍编制保障的调研", "关于公办学校教职工编制动态调整的建议",
    "关于公立医院编制备案制试点的调研", "关于议事协调机构精简规范的调研",
]
PROPOSALS = [
    "中小学教职工编制跨区域调剂方案", "撤并空壳事业单位回收编制的建议",
    "乡镇编制“县管乡用”调整建议", "医疗卫生机构编制动态调整办法",
    "机构编制实名制数据自动比对规则", "编制周转池使用管理细则",
]


@dataclass
class _Person:
    id: str
    name: str
    position: str
    department: str | None = None
    quality: float = 0.0


@dataclass
class _Department:
    id: str
    zh: str
    en: str
    approved_posts: int
    in_charge: str
    quality: float
    head: str = ""
    staff: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    at: datetime
    command: dict[str, Any]


def demo_commands(year: int = 2025, *, departments: int = 6, staff_per_department: int = 7,
                  periods: str = "monthly", seed: int = 2025) -> list[dict]:
    """The commands of one appraisal year, in file order (business time never decreases)."""
    if departments < 1 or staff_per_department < 1:
        raise ValueError("departments and staff_per_department must be at least 1")
    if periods not in ("monthly", "weekly"):
        raise ValueError(f"periods must be 'monthly' or 'weekly', not {periods!r}")
    return _DemoYear(year, departments, staff_per_department, periods, seed).build()


def write_jsonl(path: str | PathLike[str], commands: Iterable[dict]) -> int:
    """Write one compact JSON object per line (UTF-8, Chinese kept as is); return lines written."""
    lines = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        for command in commands:
            out.write(json.dumps(command, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            lines += 1
    return lines


def appraisal_id(year: int, subject: str) -> str:
    return f"{year}:{subject}"


def _working_days(start: date, end: date) -> list[date]:
    days = (start + timedelta(n) for n in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


def _score_text(value: float) -> str:
    tenths = min(1000, max(0, round(value * 10)))
    return f"{tenths // 10}.{tenths % 10}"


def _section_name(index: int) -> tuple[str, str]:
    zh, en = SECTIONS[index % len(SECTIONS)]
    cycle = index // len(SECTIONS)
    if cycle == 0:
        return zh, en
    number = cycle + 1
    ordinal = CN_ORDINALS[number - 1] if number <= len(CN_ORDINALS) else str(number)
    return f"{zh[:-1]}{ordinal}科", f"{en} {number}"


class _DemoYear:
    def __init__(self, year: int, departments: int, staff: int, periods: str, seed: int):
        self.year = year
        self.department_count = departments
        self.staff_count = staff
        self.periods = periods
        self.rng = random.Random(seed)
        self.entries: list[_Entry] = []
        self.references: list[tuple[dict, str, dict]] = []  # (command, field, referenced command)
        self.people: dict[str, _Person] = {}
        self.departments: list[_Department] = []
        self.leaders: list[str] = []
        self.superior = "p-S1"
        self.used_names: set[str] = set()
        self.setup_day = _working_days(date(year, 1, 2), date(year, 1, 8))[0]
        self.last_day = date(year, 12, 31)
        self.clock = datetime.combine(self.setup_day, time(8, 30), OFFICE_TZ)
        self.absences: list[_Entry] = []

    def build(self) -> list[dict]:
        self._organisation()
        self._open_appraisals()
        self._ratings()
        self._measurements()
        self._occurrences()
        self._special_cases()
        return self._finish()

    # -- plumbing -------------------------------------------------------------------------
    def _add(self, at: datetime, type_: str, actor: str, **fields: Any) -> _Entry:
        entry = _Entry(at, {"type": type_, "id": None, "actor": actor, "at": None, **fields})
        self.entries.append(entry)
        return entry

    def _setup(self, type_: str, **fields: Any) -> _Entry:
        self.clock += timedelta(seconds=1)
        return self._add(self.clock, type_, ADMIN, **fields)

    def _refer(self, entry: _Entry, field_name: str, target: _Entry) -> None:
        self.references.append((entry.command, field_name, target.command))

    def _finish(self) -> list[dict]:
        self.entries.sort(key=lambda entry: entry.at)  # stable: equal times keep their order
        width = max(6, len(str(len(self.entries))))
        for number, entry in enumerate(self.entries, start=1):
            entry.command["id"] = f"demo-{self.year}-{number:0{width}d}"
            entry.command["at"] = entry.at.isoformat(timespec="seconds")
        for command, field_name, target in self.references:
            command[field_name] = target["id"]
        return [entry.command for entry in self.entries]

    def _moment(self, days: list[date]) -> datetime:
        """A random moment in the working hours of one of `days` (one draw: this runs per rating)."""
        offset = int(self.rng.random() * len(days) * WORKDAY_SECONDS)
        day, seconds = divmod(offset, WORKDAY_SECONDS)
        return datetime.combine(days[day], WORKDAY_START, OFFICE_TZ) + timedelta(seconds=seconds)

    def _after(self, at: datetime, first: int, last: int) -> datetime:
        """A working moment `first` to `last` days after `at` (inside the year)."""
        return self._moment(self._days(at.date() + timedelta(first), at.date() + timedelta(last)))

    def _days(self, start: date, end: date) -> list[date]:
        start = max(start, self.setup_day + timedelta(1))
        return _working_days(start, min(end, self.last_day))

    def _name(self) -> str:
        while True:
            given_length = 2 if self.rng.random() < 0.8 else 1
            given = "".join(self.rng.choice(GIVEN_CHARS) for _ in range(given_length))
            name = self.rng.choice(SURNAMES) + given
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    def _quality(self) -> float:
        return self.rng.uniform(60, 95)

    # -- organisation and openings -------------------------------------------------------------
    def _organisation(self) -> None:
        self._setup("scheme.publish", builtin="bianban")
        for number in range(1, LEADER_COUNT + 1):
            self._person(f"p-L{number}", "leader")
        self._person(self.superior, "superior")
        department_width = max(2, len(str(self.department_count)))
        for index in range(self.department_count):
            zh, en = _section_name(index)
            department = _Department(
                id=f"d-{index + 1:0{department_width}d}", zh=zh, en=en,
                approved_posts=self.rng.randint(4, 12),
                in_charge=self.leaders[index % LEADER_COUNT], quality=self._quality())
            self.departments.append(department)
            self._setup("org.department", department=department.id,
                        name={"zh": zh, "en": en}, approved_posts=department.approved_posts,
                        in_charge=department.in_charge)
        person_width = max(3, len(str(self.department_count * (self.staff_count + 1))))
        number = 0
        for department in self.departments:
            for position in ["department_head"] + ["staff"] * self.staff_count:
                number += 1
                person = self._person(f"p-{number:0{person_width}d}", position, department.id)
                if position == "department_head":
                    department.head = person.id
                else:
                    department.staff.append(person.id)

    def _person(self, person_id: str, position: str, department: str | None = None) -> _Person:
        person = _Person(person_id, self._name(), position, department, self._quality())
        self.people[person_id] = person
        if position == "leader":
            self.leaders.append(person_id)
        fields: dict[str, Any] = {"person": person_id, "name": person.name, "position": position}
        if department is not None:
            fields["department"] = department
        self._setup("org.person", **fields)
        return person

    def _appraised(self) -> list[_Person]:
        return [self.people[pid] for d in self.departments for pid in [d.head, *d.staff]]

    def _open_appraisals(self) -> None:
        subjects = [d.id for d in self.departments] + [p.id for p in self._appraised()]
        for subject in subjects:
            self._setup("appraisal.open", year=self.year, subject=subject, scheme=dict(SCHEME))

    # -- ratings ------------------------------------------------------------------------------
    def _month_days(self, month: int) -> list[date]:
        end = (date(self.year, 12, 31) if month == 12
               else date(self.year, month + 1, 1) - timedelta(1))
        return self._days(end - timedelta(13), end)[-5:] or self._days(end, end + timedelta(7))

    def _week_days(self, week: int) -> list[date]:
        thursday = date.fromisocalendar(self.year, week, 4)
        return self._days(thursday, thursday + timedelta(1)) or self._days(
            thursday, thursday + timedelta(7))

    def _monthly(self) -> list[tuple[str, list[date]]]:
        return [(f"{self.year}-{m:02d}", self._month_days(m)) for m in range(1, 13)]

    def _weekly(self) -> list[tuple[str, list[date]]]:
        weeks = date(self.year, 12, 28).isocalendar().week
        return [(f"{self.year}-W{w:02d}", self._week_days(w)) for w in range(1, weeks + 1)]

    def _annual(self) -> list[tuple[str, list[date]]]:
        return [(str(self.year), self._days(date(self.year, 12, 15), date(self.year, 12, 30)))]

    def _leaf_periods(self) -> dict[str, list[tuple[str, list[date]]]]:
        if self.periods == "weekly":
            return {"business": self._weekly(), "innovation": self._monthly(),
                    "reform_tasks": self._monthly()}
        return {"business": self._monthly(), "innovation": self._annual(),
                "reform_tasks": self._annual()}

    def _raters(self) -> dict[str, list[tuple[str, str]]]:
        """(rater, role) pairs per subject, as SCORING.md §5 allows them."""
        raters: dict[str, list[tuple[str, str]]] = {}
        for d in self.departments:
            raters[d.id] = [(d.head, "self")] + [(lid, "leadership_team") for lid in self.leaders]
            raters[d.head] = [(d.head, "self"), (self.superior, "superior"),
                              (d.in_charge, "in_charge")] + [
                (lid, "leadership_team") for lid in self.leaders if lid != d.in_charge]
            for staff_id in d.staff:
                raters[staff_id] = [(staff_id, "self"), (d.in_charge, "in_charge"),
                                    (d.head, "department_head")]
        return raters

    def _ratings(self) -> None:
        leaf_periods = self._leaf_periods()
        leniency = {pid: self.rng.gauss(0, 2.5) for pid in self.people}
        subjects = [(d.id, d.quality, ["reform_tasks"]) for d in self.departments] + [
            (p.id, p.quality, ["business", "innovation"]) for p in self._appraised()]
        raters = self._raters()
        ratings: list[_Entry] = []
        for subject, quality, leaves in subjects:
            appraisal = appraisal_id(self.year, subject)
            self_bonus = self.rng.uniform(1, 4)  # people rate themselves a little higher
            for leaf in leaves:
                leaf_quality = quality + self.rng.gauss(0, 4)
                for rater, role in raters[subject]:
                    bias = self_bonus if role == "self" else leniency[rater]
                    for period, days in leaf_periods[leaf]:
                        score = _score_text(leaf_quality + bias + self.rng.gauss(0, 4))
                        ratings.append(self._add(
                            self._moment(days), "rating.record", rater, appraisal=appraisal,
                            leaf=leaf, period=period, rater=rater, rater_role=role, score=score))
        self._replace_some(ratings)

    def _replace_some(self, ratings: list[_Entry]) -> None:
        """Re-record a few ratings later with another score: the latest one replaces the first."""
        cutoff = datetime.combine(date(self.year, 11, 30), WORKDAY_START, OFFICE_TZ)
        candidates = [r for r in ratings if r.command["leaf"] == "business"
                      and r.command["rater_role"] != "self" and r.at < cutoff]
        for original in self.rng.sample(candidates, min(REPLACED_RATINGS, len(candidates))):
            old = original.command["score"]
            shift = self.rng.choice([-1, 1]) * self.rng.uniform(3, 8)
            new = _score_text(float(old) + shift)
            if new == old:
                new = _score_text(float(old) - shift)
            later = self._after(original.at, 1, 4)
            fields = {k: v for k, v in original.command.items()
                      if k not in ("type", "id", "actor", "at", "score")}
            self._add(later, "rating.record", original.command["actor"], **fields, score=new,
                      comment=f"复核后更正评分(原录入{old}分,录入有误)")

    # -- measurements and counted items --------------------------------------------------------
    def _measurements(self) -> None:
        days = self._days(date(self.year, 12, 8), date(self.year, 12, 12))
        for d in self.departments:
            appraisal = appraisal_id(self.year, d.id)
            implementation = min(100.0, max(88.0, 88 + (d.quality - 60) / 35 * 12
                                            + self.rng.gauss(0, 2)))
            cleanup = self.rng.uniform(70, 100)
            self._add(self._moment(days), "measurement.record", RECORDER, appraisal=appraisal,
                      input="function_implementation_rate", value=_score_text(implementation),
                      evidence=f"对照“三定”规定职责清单逐项核查,{d.zh}全年职能落实率"
                               f"{_score_text(implementation)}%")
            self._add(self._moment(days), "measurement.record", RECORDER, appraisal=appraisal,
                      input="zombie_cleanup_rate", value=_score_text(cleanup),
                      evidence=f"机构编制管理平台统计,{d.zh}负责领域僵尸机构清理率"
                               f"{_score_text(cleanup)}%")
        for person in self._appraised():
            appraisal = appraisal_id(self.year, person.id)
            low, high = (0, 150) if person.position == "department_head" else (60, 400)
            total = self.rng.randint(low, high)
            errors = min(8, total, int(abs(self.rng.gauss(0, 2.5))))
            self._add(self._moment(days), "measurement.record", RECORDER, appraisal=appraisal,
                      input="review_total", value=str(total),
                      evidence=f"编制管理平台统计:全年经办编制审核事项{total}件")
            self._add(self._moment(days), "measurement.record", RECORDER, appraisal=appraisal,
                      input="review_errors", value=str(errors),
                      evidence=f"年度质量抽查:编制审核差错{errors}件")

    def _occurrence(self, at: datetime, subject: str, item: str, evidence: str,
                    count: int = 1) -> _Entry:
        return self._add(at, "occurrence.record", RECORDER,
                         appraisal=appraisal_id(self.year, subject), item=item, count=count,
                         evidence=evidence)

    def _occurrences(self) -> None:
        year = self.year
        complaint_days = self._days(date(year, 2, 1), date(year, 11, 30))
        for d in self.rng.sample(self.departments, max(1, len(self.departments) // 3)):
            self._occurrence(
                self._moment(complaint_days), d.id, "valid_complaint",
                f"{self.rng.choice(BUREAUS)}来函反映{d.zh}在{self.rng.choice(MATTERS)}中"
                "协作响应超时,经绩效领导小组核实为有效投诉")
        absence_days = self._days(date(year, 1, 6), date(year, 11, 30))
        report_days = self._days(date(year, 3, 1), date(year, 12, 5))
        innovation_days = self._days(date(year, 4, 1), date(year, 12, 5))
        for person in self._appraised():
            if self.rng.random() < 0.3:
                for _ in range(1 if self.rng.random() < 0.8 else 2):
                    self._absence(person.id, self._moment(absence_days))
            if self.rng.random() < 0.9:
                for _ in range(self.rng.choice([1, 1, 1, 2, 2, 3])):
                    self._occurrence(self._moment(report_days), person.id,
                                     "report_adopted_provincial",
                                     f"调研报告《{self.rng.choice(REPORT_TOPICS)}》获省委编办采纳")
            if self.rng.random() < 0.25:
                for _ in range(1 if self.rng.random() < 0.8 else 2):
                    self._occurrence(self._moment(innovation_days), person.id,
                                     "innovation_adopted",
                                     f"提出的《{self.rng.choice(PROPOSALS)}》经编委会审议通过"
                                     "并落地实施")

    def _absence(self, subject: str, at: datetime) -> _Entry:
        days = 2 if self.rng.random() < 0.1 else 1
        evidence = (f"{at.month}月{at.day}日起未履行请假手续缺勤{'两' if days == 2 else '一'}天,"
                    "考勤系统记录为证")
        entry = self._occurrence(at, subject, "absence", evidence, count=days)
        self.absences.append(entry)
        return entry

    # -- deduction, veto and appeals ----------------------------------------------------------
    def _special_cases(self) -> None:
        year = self.year
        heads = [self.people[d.head] for d in self.departments]
        hiring_head = self.rng.choice(heads)
        department = next(d for d in self.departments if d.head == hiring_head.id)
        adjustment = self._add(
            self._moment(self._days(date(year, 4, 1), date(year, 6, 30))), "adjustment.apply",
            RECORDER, appraisal=appraisal_id(year, hiring_head.id), item="over_quota_hiring",
            evidence=f"编制实名制核查:{department.zh}在编制已满的情况下调入人员1名,"
                     f"{hiring_head.name}同志作为科室负责人签批,属超编进人")
        self._appeal(adjustment, hiring_head.id, "overturned",
                     grounds="该人员调入系编委会会议批准的政策性安置,已核增周转编制,不属于"
                             "超编进人,附编委会会议纪要",
                     reason="经复核编委会会议纪要及周转编制核增文件,该调入属政策性安置,"
                            "撤销超编进人扣分")

        staff = [self.people[pid] for d in self.departments for pid in d.staff]
        vetoed = self.rng.choice(staff)
        self._add(self._moment(self._days(date(year, 9, 1), date(year, 11, 15))), "veto.impose",
                  DISCIPLINE, appraisal=appraisal_id(year, vetoed.id),
                  reason="data_falsification",
                  evidence=f"专项审计发现,{vetoed.name}同志在机构编制实名制数据报送中虚报"
                           "在编人数,属编制数据造假")

        self._appeal(self._appealable_absence({hiring_head.id, vetoed.id}), None, "upheld",
                     grounds="当日因公外出参加编制核查,未及时补办手续,申请撤销缺勤记录",
                     reason="经核查考勤记录及外出审批单,当日无外出审批记录,缺勤事实成立,"
                            "维持原记录")

    def _appealable_absence(self, excluded: set[str]) -> _Entry:
        """An absence early enough for its appeal to be filed and decided within the year."""
        cutoff = datetime.combine(date(self.year, 10, 31), time(0), OFFICE_TZ)

        def subject(entry: _Entry) -> str:
            return entry.command["appraisal"].split(":", 1)[1]

        candidates = [e for e in self.absences if e.at < cutoff and subject(e) not in excluded]
        if candidates:
            return self.rng.choice(candidates)
        others = [p.id for p in self._appraised() if p.id not in excluded] or [
            p.id for p in self._appraised()]
        days = self._days(date(self.year, 3, 1), date(self.year, 9, 30))
        return self._absence(self.rng.choice(others), self._moment(days))

    def _appeal(self, item: _Entry, appellant: str | None, outcome: str, *, grounds: str,
                reason: str) -> None:
        appraisal = item.command["appraisal"]
        appellant = appellant or appraisal.split(":", 1)[1]
        filed_at = self._after(item.at, 3, 24)
        appeal = self._add(filed_at, "appeal.file", appellant, appraisal=appraisal, target=None,
                           grounds=grounds)
        self._refer(appeal, "target", item)
        decided_at = self._after(filed_at, 5, 25)
        decision = self._add(decided_at, "appeal.decide", DECIDER, appeal=None, outcome=outcome,
                             reason=reason)
        self._refer(decision, "appeal", appeal)


SATISFACTION_REASON = ("2025 年度方案修订:增设群众满意度测评(定性评价),协同效能 30 分中 10 分改由满意度计分 — "
                       "adds the qualitative evaluation: 10 of collaboration's 30 points move to a "
                       "public satisfaction survey (SCORING.md §12)")
ADOPTION_REASON = ("经编委会审议,2025 年度考核改用 bianban 第 2 版(含群众满意度测评) — "
                   "the appraisal committee adopts bianban v2 (with the satisfaction survey) for 2025")
SURVEY_OPTIONS = [("satisfied", "满意", "satisfied", "1"), ("basically_satisfied", "基本满意", "basically satisfied", "0.6"),
                  ("dissatisfied", "不满意", "dissatisfied", "0")]
SURVEY_ROUNDS = [(7, "2025 年度群众满意度测评第一轮:服务对象问卷 (round 1: the people served)"),
                 (14, "2025 年度群众满意度测评第二轮:基层单位问卷 (round 2: grassroots units)")]


def satisfaction_scheme_document() -> dict[str, Any]:
    """`bianban` version 2: v1 with 10 of collaboration's 30 points moved to a `public_satisfaction`
    leaf (proportional to the survey's rate, target 100) and the survey input of SCORING.md §12."""
    from domain.scheme import builtin_document

    document = builtin_document("bianban")
    document.update(version=2, supersedes=1, reason=SATISFACTION_REASON)
    document["inputs"]["public_satisfaction"] = {
        "kind": "survey", "unit": "%", "name": {"zh": "群众满意度", "en": "public satisfaction"},
        "options": [{"id": option, "name": {"zh": zh, "en": en}, "weight": weight}
                    for option, zh, en, weight in SURVEY_OPTIONS],
        "min_responses": 30,
    }
    nodes = document["department"]
    collaboration = next(index for index, node in enumerate(nodes) if node["id"] == "collaboration")
    nodes[collaboration]["points"] = "20"
    nodes.insert(collaboration + 1, {
        "id": "public_satisfaction", "name": {"zh": "群众满意度", "en": "public satisfaction"}, "points": "10",
        "base": {"type": "proportional", "input": "public_satisfaction", "target": "100"}})
    return document


def rule_change_commands(year: int = 2025, *, departments: int = 6, seed: int = 2025) -> list[dict[str, Any]]:
    """The demo's rule change (SCORING.md §9, §12): `bianban` v2 published with its reason, the year
    adopted to it with a reason, then two questionnaire rounds per department. Before the adoption,
    `appraisal replay --year Y --scheme bianban@2` shows what v2 would change; after it, the results,
    the history and every explanation show both versions and the switch."""
    rng = random.Random(seed + 12)
    width = max(2, len(str(departments)))
    moment = datetime.combine(date(year + 1, 1, 5), time(9, 0), OFFICE_TZ)
    commands: list[dict[str, Any]] = [
        {"type": "scheme.publish", "id": f"demo-{year}-scheme-v2", "actor": ADMIN,
         "at": moment.isoformat(), "document": satisfaction_scheme_document()},
        {"type": "year.adopt", "id": f"demo-{year}-adopt-v2", "actor": ADMIN,
         "at": (moment + timedelta(days=1)).isoformat(), "year": year,
         "scheme": {"id": "bianban", "version": 2}, "reason": ADOPTION_REASON},
    ]
    for number, (day, evidence) in enumerate(SURVEY_ROUNDS, start=1):
        for index in range(departments):
            department = f"d-{index + 1:0{width}d}"
            responses = rng.randint(40, 90)
            dissatisfied = rng.randint(0, responses // 10)
            basically = rng.randint(0, (responses - dissatisfied) // 3)
            at = datetime.combine(date(year + 1, 1, day), time(10), OFFICE_TZ) + timedelta(minutes=index)
            commands.append({
                "type": "survey.record", "id": f"demo-{year}-survey-{number}-{department}", "actor": RECORDER,
                "at": at.isoformat(), "appraisal": appraisal_id(year, department), "input": "public_satisfaction",
                "counts": {"satisfied": responses - basically - dissatisfied, "basically_satisfied": basically,
                           "dissatisfied": dissatisfied},
                "evidence": evidence})
    return commands
