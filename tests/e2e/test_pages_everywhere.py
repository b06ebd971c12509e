"""Every page, for every role, at 1280 and 390 px wide (issue 17: items 15, 16 and 18).

One demo-like world for the module (a small `appraisal demo` year 2025, published and then revised,
a corrected scheme version, an appeal still open, a year 2026 opened and not published), served
by uvicorn as in production, one chromium (tests/e2e/conftest.py) and one signed-in browser page
per role. For each page in `PAGES` and each role in `ROLES` (a page a role may not open is its
refusal page, which is a page too), at both widths:

- 15: no internal id or rule code shows as a word: no token of the scheme documents' ids, the
  refusal codes, the event and command types or the label keys, and no snake_case at all, in the
  visible text or in what a phone shows or a screen reader reads (data-label, title, aria-label,
  placeholder);
- 16: at 390 px the whole page never scrolls sideways (`scrollWidth <= 390`);
- 18: axe (axe-core inside chromium, from the axe-playwright-python wheel: nothing fetched) finds
  no serious or critical violation; landmarks, a skip link that is the first thing a Tab reaches,
  `scope` on every table header, and a visible focus on what the keyboard reaches.

Screenshots: var/screenshots/everywhere/<page>-<role>-<width>.png. Pages added later (staff
history, the 公示 notice, rule changes) join by one line in `PAGES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from api.cli.demo import demo_commands, rule_change_commands
from api.ledger import AppraisalLedger
from api.pages import labels as page_labels
from api.pages.inspector import DATA_FIELDS, EVENT_TYPES
from api.server.app import create_app
from domain.commands import COMMAND_TYPES
from domain.scheme import builtin_document
from tests.builders.http_world import World, served, settings
from tests.builders.pages_kit import screenshot, signed_in

WIDTHS = (1280, 390)
ROOT = Path(__file__).resolve().parents[2]

# Who opens the pages: a person of the demo for each role (anonymous: nobody signed in).
ROLES: dict[str, tuple[str, tuple[str, ...]] | None] = {
    "admin": ("p-L1", ("admin",)),
    "inspector": ("p-S1", ("inspector",)),
    "staff": ("p-010", ()),      # appealed an absence (upheld) and has an appeal still open
    "head": ("p-005", ()),       # head of d-02: the department's appraisal is theirs
    "anonymous": None,
}
SIGNED_IN = ("admin", "inspector", "staff", "head")


def at(day: str) -> str:
    return f"{day}T10:00:00+08:00"


def demo_world() -> list[dict[str, Any]]:
    """A small demo year, published, then revised by a later absence that is appealed (open, overdue)
    and by an absence of yesterday (its appeal window open); the demo's rule change (bianban v2 with a
    satisfaction survey, adopted, two questionnaire rounds per department); 2026 opened for two people."""
    commands = [*demo_commands(2025, departments=3, staff_per_department=3), *rule_change_commands(2025, departments=3)]
    commands += [
        {"type": "year.publish", "id": "ew-publish", "actor": "admin-2", "at": at("2026-01-15"), "year": 2025},
        {"type": "occurrence.record", "id": "ew-absence", "actor": "hr-office", "at": at("2026-01-16"),
         "appraisal": "2025:p-010", "item": "absence", "count": 1, "evidence": "考勤记录：未请假缺勤"},
        {"type": "appeal.file", "id": "ew-appeal", "actor": "p-010", "at": at("2026-01-20"),
         "appraisal": "2025:p-010", "target": "ew-absence", "grounds": "已按规定请假，附请假单"},
    ]
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    commands.append({"type": "occurrence.record", "id": "ew-recent-absence", "actor": "hr-office", "at": yesterday,
                     "appraisal": "2025:p-010", "item": "absence", "count": 1, "evidence": "考勤记录：未请假缺勤"})
    commands += [{"type": "appraisal.open", "id": f"ew-open-{subject}", "actor": "admin", "at": at("2026-01-05"),
                  "year": 2026, "subject": subject, "scheme": {"id": "bianban", "version": 1}}
                 for subject in ("p-003", "p-010")]
    return commands


# --- the pages ---------------------------------------------------------------------------------------

def finalize_refused(page: Page) -> None:
    """The admin confirms finalizing 2025 while an appeal is open: refused, the reason on the page."""
    form = page.locator("form[action$='/finalize']")
    if form.count():
        form.locator("input[name=confirm]").check()
        form.locator("button[type=submit]").click()
        page.wait_for_load_state()


def token_refused(page: Page) -> None:
    """An inspector's grant together with the admin's: refused, what was typed kept."""
    if page.locator("form[action='/admin/tokens']").count():
        page.fill("#person", "p-003")
        page.check("input[name=grant-inspector]")
        page.check("input[name=grant-admin]")
        page.click("form[action='/admin/tokens'] button[type=submit]")
        page.wait_for_load_state()


def sign_in_refused(page: Page) -> None:
    page.fill("#token", "al_not-a-token")
    page.click("form[action='/'] button[type=submit]")
    page.wait_for_load_state()


@dataclass(frozen=True)
class Visit:
    """A page to open: `ok` are the roles that read it (status 200); the others get a refusal page
    (or, signed out, the sign-in page). `act`: what to do there first (a refused form)."""

    name: str
    path: str
    ok: tuple[str, ...] = SIGNED_IN
    roles: tuple[str, ...] = SIGNED_IN
    act: Callable[[Page], None] | None = None


READERS = ("admin", "inspector")
SCHEME_V2 = next(c for c in rule_change_commands(2025, departments=3) if c["type"] == "scheme.publish")
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # as of then: all the world recorded
PAGES = (
    Visit("signin", "/", ok=("anonymous",), roles=("anonymous",)),
    Visit("signin-refused", "/", ok=("anonymous",), roles=("anonymous",), act=sign_in_refused),
    Visit("home", "/home"),
    Visit("year-published", "/years/2025"),
    Visit("year-provisional", "/years/2026"),
    Visit("appraisal-own", "/appraisals/2025:p-010"),
    Visit("appraisal-colleague", "/appraisals/2025:p-003"),
    Visit("appraisal-department", "/appraisals/2025:d-02"),
    Visit("appraisal-before-publication", "/appraisals/2026:p-003", ok=READERS),
    Visit("appraisal-known-at", "/appraisals/2025:p-010?known_at=2025-06-30", ok=READERS),
    Visit("lookback", "/years/2025/lookback", ok=READERS),
    Visit("lookback-as-of", f"/years/2025/lookback?as_of={TOMORROW}&known_at=2025-12-31", ok=READERS),
    Visit("publication", "/years/2025/published/1"),
    Visit("audit", "/audit", ok=READERS),
    Visit("audit-filtered", "/audit?appraisal=2025:p-010&type=Appraisal.AppealFiled", ok=READERS),
    Visit("integrity", "/integrity", ok=READERS),
    Visit("admin", "/admin", ok=("admin",)),
    Visit("admin-appeals", "/admin/appeals", ok=("admin",)),
    Visit("admin-year", "/admin/years/2025", ok=("admin",)),
    Visit("admin-year-refused", "/admin/years/2025", ok=("admin",), roles=("admin",), act=finalize_refused),
    Visit("admin-tokens", "/admin/tokens", ok=("admin",)),
    Visit("admin-tokens-refused", "/admin/tokens", ok=("admin",), roles=("admin",), act=token_refused),
    Visit("admin-import", "/admin/import", ok=("admin",)),
    Visit("history-own", "/people/p-010", ok=("admin", "inspector", "staff")),
    Visit("notice", "/years/2025/notice"),
    Visit("admin-schemes", "/admin/schemes", ok=("admin",)),
    Visit("admin-scheme-document", "/admin/schemes/bianban/2", ok=("admin",)),
    Visit("admin-scheme-diff", "/admin/schemes/diff?old=bianban@1&new=bianban@2", ok=("admin",)),
    Visit("admin-replay", "/admin/years/2025/replay?scheme=bianban@1", ok=("admin",)),
    Visit("not-found", "/appraisals/2025:p-999", ok=()),
)
CASES = [pytest.param(visit, role, id=f"{visit.name}-{role}") for visit in PAGES for role in visit.roles]


# --- what must not show: ids and codes -------------------------------------------------------------

SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
ID_LIKE = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)+$")
CAMEL = re.compile(r"^[A-Z][a-z]+[A-Z]")  # RatingRecorded, not Published (a word)
TOKEN_PREFIX = re.compile(r"^al_")  # the start of a person's token, shown to tell tokens apart
FILE_NAME = re.compile(r"\.(?:py|json|jsonl|pem|xlsx|csv)$")
RULE_CODE_IN_SOURCE = re.compile(r"""rule\s*=\s*"([a-z][a-z0-9-]+)"|Problem\(\d{3},\s*"([a-z][a-z0-9-]+)\"""")


def scheme_ids(value: Any) -> set[str]:
    """Every key and text of a scheme document that looks like an id (`reform_tasks`, `per_occurrence`)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if ID_LIKE.match(str(key)):
                found.add(str(key))
            found |= scheme_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= scheme_ids(inner)
    elif isinstance(value, str) and ID_LIKE.match(value):
        found.add(value)
    return found


def refusal_codes() -> set[str]:
    """The rule codes of every refusal: the pages' own words for them and every code in the source."""
    codes = set(page_labels.RULES_ZH)
    for folder in ("api", "domain", "projections"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in RULE_CODE_IN_SOURCE.finditer(path.read_text(encoding="utf-8")):
                codes.add(match.group(1) or match.group(2))
    return {code for code in codes if "-" in code}


def known_ids() -> set[str]:
    """Ids and codes that must never be a word on a page (only multi-part ones: `business` or
    `duty` are also English words)."""
    ids = scheme_ids(builtin_document("bianban")) | scheme_ids(SCHEME_V2["document"])
    for mapping in (page_labels.POSITIONS, page_labels.ROLES, page_labels.STATUS, page_labels.CONSEQUENCES,
                    page_labels.KINDS, page_labels.OUTCOMES, page_labels.GRANTS, page_labels.TRACE_RULES,
                    DATA_FIELDS):
        ids |= {key for key in mapping if ID_LIKE.match(key)}
    events = {name.split(".", 1)[1] for name in EVENT_TYPES}
    ids |= set(EVENT_TYPES) | {name for name in events if CAMEL.match(name)} | set(COMMAND_TYPES)
    return ids | refusal_codes()


KNOWN_IDS = known_ids()
SHOWN = """() => {
  const seen = [document.body.innerText];
  for (const el of document.querySelectorAll('[data-label], [title], [aria-label], [placeholder], img[alt]')) {
    for (const name of ['data-label', 'title', 'aria-label', 'placeholder', 'alt']) {
      if (el.hasAttribute(name)) seen.push(el.getAttribute(name));
    }
  }
  return seen.join('\\n');
}"""


def ids_shown(text: str) -> list[str]:
    """The tokens of `text` that are internal ids or rule codes (a file name such as
    `verify_proof.py` is a name, not an id)."""
    found = []
    for token in re.findall(r"[A-Za-z0-9_.@:#/-]+", text):
        token = token.strip(".:#/-")
        if not token or FILE_NAME.search(token) or TOKEN_PREFIX.match(token):
            continue
        parts = {token, *re.split(r"[@:#/.]", token)}
        hits = [part for part in parts if part in KNOWN_IDS or SNAKE.match(part)]
        if hits:
            found.append(token)
    return sorted(set(found))


def test_the_id_check_finds_ids_and_codes() -> None:
    """What the crawl looks for: scheme ids, rule codes and snake_case, not names, numbers or references."""
    assert {"reform_tasks", "per_occurrence", "breakdown-before-publication", "admin-required",
            "Appraisal.RatingRecorded", "rating.record", "department_head"} <= KNOWN_IDS
    text = ("规则 rule: breakdown-before-publication 改革任务 reform_tasks 2025:p-010#47 hr-office "
            "verify_proof.py 补录 back-dated bianban@1 RatingRecorded x.some_field Published al_lj_40w3…")
    assert ids_shown(text) == ["RatingRecorded", "breakdown-before-publication", "reform_tasks", "x.some_field"]


# --- accessibility ---------------------------------------------------------------------------------

AXE = Axe()
SERIOUS = ("serious", "critical")
# Rows of a long table repeat the markup of the first ones: axe reads the first six rows of every
# table body and every row marked as special (struck, tie, vetoed, ...), not the 60th rating again.
REPEATED_ROWS = "tbody > tr:nth-child(n+7):not(.struck, .tie, .vetoed, .highlight, .cut, .mine)"

STRUCTURE = """() => {
  const problems = [];
  const one = (selector, what) => { if (!document.querySelector(selector)) problems.push('no ' + what); };
  one('body > header', 'header (banner)');
  one('main#main', 'main');
  one('body > footer', 'footer (contentinfo)');
  const skip = document.querySelector('a.skip');
  if (!skip || skip.getAttribute('href') !== '#main') problems.push('no skip link to #main');
  for (const th of document.querySelectorAll('th')) {
    const scope = th.getAttribute('scope');
    const inHead = th.closest('thead') !== null;
    if (inHead ? scope !== 'col' : scope !== 'row') {
      problems.push('th without scope=' + (inHead ? 'col' : 'row') + ': ' + th.textContent.trim().slice(0, 40));
    }
  }
  for (const field of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const labelled = (field.labels && field.labels.length) || field.getAttribute('aria-label')
      || field.getAttribute('aria-labelledby');
    if (!labelled) problems.push('unlabelled ' + field.tagName.toLowerCase() + ' ' + (field.name || ''));
  }
  return problems;
}"""

FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {tag: el.tagName.toLowerCase(), text: (el.textContent || el.name || '').trim().slice(0, 30),
          outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
          shadow: style.boxShadow !== 'none', width: box.width, height: box.height};
}"""


def axe_serious(page: Page, contrast: bool) -> list[str]:
    """axe's serious and critical violations. Colour contrast (the slowest rule by far) is checked
    at one width: no colour depends on the width in pages.css."""
    options = {"resultTypes": ["violations"], "rules": {"color-contrast": {"enabled": contrast}}}
    results = AXE.run(page, context={"exclude": [[REPEATED_ROWS]]}, options=options)
    return [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(str(n["target"]) for n in v["nodes"][:4])
            for v in results.response["violations"] if v.get("impact") in SERIOUS]


def keyboard_focus(page: Page, presses: int = 12) -> list[str]:
    """Tab from the top: the skip link comes first and shows; everything reached shows its focus."""
    problems = []
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUS)
    skip = page.locator("a.skip")
    if not first or first["tag"] != "a" or not skip.evaluate("el => el === document.activeElement"):
        problems.append(f"the first Tab reaches {first}, not the skip link")
    else:
        box = skip.bounding_box()
        if not box or box["x"] < 0 or box["y"] < 0:
            problems.append("the focused skip link is off screen")
    for _ in range(presses):
        focused = page.evaluate(FOCUS)
        if focused and not (focused["outline"] or focused["shadow"]):
            problems.append(f"no visible focus on {focused}")
        page.keyboard.press("Tab")
    return problems


# --- the world and the browser pages ---------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('everywhere')}/appraisal.db"
    ledger = AppraisalLedger(db_url)
    try:
        ledger.submit(demo_world())
        app = create_app(settings(db_url, projection="inline"), ledger=ledger)
        credentials = app.state.credentials
        tokens = {role: credentials.create(holder[0], holder[1], created_by="tests")[0]
                  for role, holder in ROLES.items() if holder}
        with served(app) as base:
            yield World(ledger, app, tokens), base
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def pages(browser: Browser, site: tuple[World, str]) -> Iterator[dict[str, Page]]:
    """One browser page per role, signed in once (anonymous: a context without a session)."""
    w, base = site
    opened: dict[str, Page] = {}
    for role in ROLES:
        if role == "anonymous":
            opened[role] = browser.new_context(base_url=base, locale="zh-CN").new_page()
        else:
            opened[role] = signed_in(browser, base, w.tokens[role])
    yield opened
    for page in opened.values():
        page.context.close()


@pytest.mark.parametrize(("visit", "role"), CASES)
def test_every_page_for_every_role(pages: dict[str, Page], visit: Visit, role: str) -> None:
    page = pages[role]
    problems: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
        response = page.goto(visit.path)
        assert response is not None
        if visit.act:
            visit.act(page)
        elif role in visit.ok:
            assert response.status == 200, f"{visit.path} as {role}: {response.status}"
        else:
            assert response.status in (403, 404), f"{visit.path} as {role}: {response.status}"
        expect(page.locator("main")).to_be_visible()
        where = f"{visit.path} as {role} at {width}px"
        problems += [f"{where}: shows the id {token!r}" for token in ids_shown(page.evaluate(SHOWN))]
        if width <= 400:
            wide = page.evaluate("document.documentElement.scrollWidth")
            if wide > width:
                problems.append(f"{where}: the page scrolls sideways ({wide}px wide)")
        problems += [f"{where}: {p}" for p in page.evaluate(STRUCTURE)]
        problems += [f"{where}: axe {v}" for v in axe_serious(page, contrast=width > 400)]
        if width > 400:
            page.evaluate("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
            problems += [f"{where}: {p}" for p in keyboard_focus(page)]
        screenshot(page, f"everywhere/{visit.name}-{role}-{width}.png")
    problems = list(dict.fromkeys(problems))
    assert not problems, "\n".join(problems)


# --- forms by keyboard alone -------------------------------------------------------------------------

def tab_to(page: Page, selector: str, presses: int = 60) -> None:
    """Press Tab until the element of `selector` has the focus (a test fails when it never does)."""
    target = page.locator(selector).first
    for _ in range(presses):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reaches {selector}")


def test_signing_in_and_appealing_by_keyboard_alone(browser: Browser, site: tuple[World, str]) -> None:
    """Sign in, follow the skip link, open an appeal form, type the grounds and submit: keys only.
    Grounds of blanks are refused, the refusal shown where the person is looking."""
    w, base = site
    context = browser.new_context(base_url=base, locale="zh-CN", viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto("/")
        tab_to(page, "#token")
        page.keyboard.type(w.tokens["staff"])
        page.keyboard.press("Enter")
        page.wait_for_url("**/home")
        page.goto("/appraisals/2025:p-010")
        page.keyboard.press("Tab")
        expect(page.locator("a.skip")).to_be_focused()
        page.keyboard.press("Enter")
        form = page.locator("details.appeal-form", has=page.locator("input[name=target][value='ew-recent-absence']"))
        tab_to(page, "details.appeal-form:has(input[value='ew-recent-absence']) summary", presses=300)
        page.keyboard.press("Enter")  # opens the form
        page.keyboard.press("Tab")
        expect(form.locator("textarea")).to_be_focused()
        page.keyboard.type("   ")  # grounds of blanks only: refused, nothing recorded
        page.keyboard.press("Tab")
        expect(form.locator("button[type=submit]")).to_be_focused()
        with page.expect_response(lambda r: r.request.method == "POST") as answered:
            page.keyboard.press("Enter")
        assert answered.value.status == 422
        refusal = page.get_by_test_id("refusal")
        expect(refusal).to_be_visible()
        expect(refusal).to_contain_text("请填写申诉理由")  # Chinese first
        expect(refusal.locator(".en").last).not_to_be_empty()  # the service's English beside it
        assert not [a for a in w.app.state.queries.appeals(2025) if a["target"]["command"] == "ew-recent-absence"]
        screenshot(page, "everywhere/keyboard-appeal-refused-staff-390.png")
    finally:
        context.close()


# --- the service's notes in words ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "shown"), [
    ("position 3 of 12", "第 3 位"),
    ("innovation_award_nomination, promotion_priority", "创新奖提名"),
    ("missing rater group(s): leadership_team, in_charge", "缺少评分组"),
    ("no usable ratings for reform_tasks", "改革任务"),
    ("department d-03 is incomplete", "事业单位机构编制科"),
    ("required measurement zombie_cleanup_rate not recorded", "缺少必需的测量值"),
    ("appeal demo-2025-000291 upheld: 缺勤事实成立", "申诉（demo-2025-000291）维持"),
    ("clamped to 0 (base + adjustments = -3)", "限定为 0"),
])
def test_notes_are_in_chinese_with_english_beside_and_no_ids(site: tuple[World, str], text: str, shown: str) -> None:
    w, _ = site
    words = page_labels.note(text, page_labels.labels_for(w.ledger, "bianban@1"))
    assert shown in words and re.search(r"[A-Za-z]{3}", words), words
    assert not ids_shown(words), words


def test_every_note_of_the_demo_year_is_put_in_words(site: tuple[World, str]) -> None:
    """The notes the scoring writes in this world (figures and incomplete appraisals) are all known
    to labels.note: a new kind of note fails here until it has its words."""
    w, _ = site
    queries = w.app.state.queries
    labels = page_labels.labels_for(w.ledger, "bianban@1")
    notes = set()
    for year in (2025, 2026):
        for row in [*queries.results(year).get("people", []), *queries.results(year).get("departments", [])]:
            doc = queries.explanation(f"{year}:{row['id']}")
            notes |= {n for f in doc.get("figures", []) for n in f.get("notes") or []}
            notes |= set((doc.get("summary") or {}).get("incomplete") or [])
    assert len(notes) >= 5
    unknown = sorted(text for text in notes if page_labels.note(text, labels) == text and not re.search(r"[\u4e00-\u9fff]", text))
    assert not unknown, unknown
