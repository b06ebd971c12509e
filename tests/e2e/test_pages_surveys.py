"""Survey rounds in the pages (SCORING.md §12), over HTTP on both stores: a department's page shows
each round (its survey by name, its counts per option) and the survey's figure; its head appeals a
round from the page like a counted item; an overturned round shows struck."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.cli.demo import satisfaction_scheme_document
from tests.builders.corrected_scheme import adopt, publish
from tests.builders.http_world import World, world
from tests.builders.pages_kit import HTML, ORIGIN, sign_in
from tests.builders.survey_scheme import ROUND_1, ROUND_2

D01 = "2025:d-01"


@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    at = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    with world(db_url) as made:
        made.ledger.submit([
            publish(satisfaction_scheme_document()), adopt(2),
            *({"type": "survey.record", "id": f"round-{n}", "actor": "hr-office", "at": at, "appraisal": D01,
               "input": "public_satisfaction", "counts": counts, "evidence": f"第{n}轮问卷"}
              for n, counts in ((1, ROUND_1), (2, ROUND_2)))])
        yield made


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app, headers={"Origin": ORIGIN}) as made:  # a browser's form from these pages
        yield made


def test_the_department_page_shows_the_rounds_and_the_head_appeals_one(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["head"])
    page = client.get(f"/appraisals/{D01}", headers=HTML)
    assert page.status_code == 200
    assert "满意度测评轮次" in page.text and "群众满意度" in page.text
    # the counts per option by the option's name, never its id
    assert "满意 satisfied 40" in page.text and "基本满意 basically satisfied 8" in page.text
    assert "不满意 dissatisfied 2" in page.text and "basically_satisfied" not in page.text
    assert 'value="round-2"' in page.text  # the appeal form offers the round
    response = client.post(f"/appraisals/{D01}", data={"target": "round-2", "grounds": "重复统计", "id": "pg-ap"},
                           headers=HTML, follow_redirects=False)
    assert response.status_code == 303, response.text
    decided = client.post("/appeals/pg-ap/decision", json={"outcome": "overturned", "reason": "核实为重复"},
                          headers=w.auth("admin"))
    assert decided.status_code == 201, decided.text
    page = client.get(f"/appraisals/{D01}", headers=HTML)
    assert "8.96" in page.text  # round 1 alone: 89.6 % of 10 points
    assert "overturned on appeal pg-ap" in page.text or "撤销" in page.text


def test_the_breakdown_shows_the_surveys_totals_and_each_rounds_counts_in_the_schemes_order(
        w: World, client: TestClient) -> None:
    """The head's 加分/扣分明细: a row of the survey's totals (rounds, responses, weighted sum, rate,
    SCORING.md §12: (40 + 4.8 + 25 + 3) / 80 = 91 %), and each round's counts in the order the
    scheme lists its options (satisfied, basically satisfied, dissatisfied), not alphabetical."""
    sign_in(client, w.tokens["head"])
    text = re.sub(r"<[^>]+>", " ", client.get(f"/appraisals/{D01}", headers=HTML).text)
    assert "轮次数 rounds 2" in text and "答卷数 responses 80" in text
    assert re.search(r"加权和 weighted sum 72\.8\b", text), "the weighted sum 72.8"
    assert re.search(r"满意率 satisfaction rate 91(\.0+)?\b", text), "the rate 91"
    assert "满意 satisfied 40，基本满意 basically satisfied 8，不满意 dissatisfied 2" in text


def test_the_survey_figure_the_diff_and_the_replay_name_every_part(w: World, client: TestClient) -> None:
    """The admin's full trace, the diff of bianban 1 → 2 and the replay under bianban 1: the survey,
    its options, weights, counts and parts by name (labels.py), no id of the scheme document."""
    sign_in(client, w.tokens["admin"])
    trace = client.get(f"/appraisals/{D01}", headers=HTML).text
    for shown in ("权重 weight · 基本满意 basically satisfied", "份数 count · 不满意 dissatisfied",
                  "最少答卷数 minimum responses", "答卷数 responses", "加权和 weighted sum", "满意率 satisfaction rate",
                  "满意度测评 survey"):
        assert shown in trace, shown
    diff = client.get("/admin/schemes/diff?old=bianban@1&new=bianban@2", headers=HTML).text
    assert "基本满意 basically satisfied 0.6" in diff and "最少答卷数 minimum responses 30" in diff
    replay = client.get("/admin/years/2025/replay?scheme=bianban@1", headers=HTML).text
    assert "群众满意度 public satisfaction · 基础分 base" in replay
    for page in (trace, diff, replay):  # what shows: the text and the titles (a hover shows those)
        shown = re.sub(r"<[^>]+>", " ", page) + " ".join(re.findall(r'title="([^"]*)"', page))
        for hidden in ("basically_satisfied", "min_responses", "public_satisfaction", "recorded_at"):
            assert hidden not in shown, hidden


def test_blank_grounds_are_refused_in_words_not_pydantics(w: World, client: TestClient) -> None:
    sign_in(client, w.tokens["head"])
    refused = client.post(f"/appraisals/{D01}", data={"target": "round-1", "grounds": "   ", "id": "pg-blank"},
                          headers=HTML, follow_redirects=False)
    assert refused.status_code == 422
    assert "请填写申诉理由" in refused.text and "please give the grounds of the appeal" in refused.text
    assert "String should have" not in refused.text
