"""The read models carry surveys (SCORING.md §12) like any other fact, on SQLite and PostgreSQL: the
demo year with its rule change (bianban v2 adopted, two questionnaire rounds per department), fed in
chunks, equals the direct computation each time (results, explanations, 公示 breakdowns, histories);
the audit trail names the figures a round feeds, and an overturned round the same."""

from __future__ import annotations

from api.cli.demo import demo_commands, rule_change_commands
from tests.builders.read_models import YEAR, assert_equal_to_direct, chunks, opened


def test_the_demo_years_rule_change_fed_in_chunks_equals_the_direct_computation(db_url: str) -> None:
    year = demo_commands(YEAR, departments=2, staff_per_department=2)
    change = rule_change_commands(YEAR, departments=2)
    with opened(db_url) as store:
        store.submit(year)
        for chunk in chunks(change, 3):
            store.submit(chunk)
            assert_equal_to_direct(store)
        results = store.views.results(YEAR)
        assert results["scheme"] == {"id": "bianban", "version": 2}
        assert all("public_satisfaction" in d["leaves"] for d in results["departments"])
        for person in results["people"]:
            assert [(h["year"], h["scheme"]) for h in store.views.person_history(person["id"])] == [
                (YEAR, "bianban@2")]
        rounds = [row for row in store.views.audit(aggregate=f"{YEAR}:d-01") if row["event"] == "SurveyRecorded"]
        assert len(rounds) == 2
        for row in rounds:
            assert row["detail"]["input"] == "public_satisfaction" and sum(row["detail"]["counts"].values()) >= 40
            assert row["figures"] == ["survey:public_satisfaction", "base:public_satisfaction",
                                      "node:public_satisfaction", "department"]
        breakdown = store.views.breakdown(f"{YEAR}:d-01", 0)
        assert [item["kind"] for item in breakdown["items"]].count("survey") == 2

        head = next(c["person"] for c in year if c["type"] == "org.person" and c.get("department") == "d-01"
                    and c["position"] == "department_head")
        target = change[2]["id"]  # d-01's first round
        store.submit([
            {"type": "appeal.file", "id": "ap-s", "actor": head, "at": "2026-01-20T09:00:00+08:00",
             "appraisal": f"{YEAR}:d-01", "target": target, "grounds": "样本不足"},
            {"type": "appeal.decide", "id": "de-s", "actor": "admin-2", "at": "2026-01-25T09:00:00+08:00",
             "appeal": "ap-s", "outcome": "overturned", "reason": "抽样不合规"}])
        assert_equal_to_direct(store)
        decision = next(row for row in store.views.audit(aggregate=f"{YEAR}:d-01") if row["event"] == "AppealDecided")
        assert decision["figures"][0] == "survey:public_satisfaction"
        struck = [item for item in store.views.breakdown(f"{YEAR}:d-01", 0)["items"] if "struck" in item]
        assert [item["kind"] for item in struck] == ["survey"]
