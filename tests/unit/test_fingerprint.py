"""Command fingerprints stay what they were (stored command rows are compared with them)."""

from __future__ import annotations

import hashlib

from api.cli.demo import demo_commands
from domain import commands as c


def test_fingerprint_is_the_digest_of_model_dump_json() -> None:
    bodies = demo_commands(2025, departments=2, staff_per_department=3, periods="weekly")
    bodies.append({"type": "rating.record", "appraisal": "2025:p-1", "leaf": "质量", "period": "2025",
                   "rater_role": "self", "score": "90.50", "comment": "好\n\"ok\"", "actor": "甲",
                   "at": "2025-06-30T10:00:00+08:00"})
    kinds = set()
    for body in bodies:
        command = c.parse_command(body)
        kinds.add(command.type)
        assert c.fingerprint(command) == hashlib.sha256(command.model_dump_json().encode()).hexdigest()
    assert len(kinds) >= 5
