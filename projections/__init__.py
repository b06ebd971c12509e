"""The read models, fed by the event log (issue: read models).

One projection writes them all from one fold of the log (domain/log.py), because every one of them
is a view of the same scored year:
- `rm_year_results`: the year's results export (COMMANDS.md), as served to those who see it all;
- `rm_explanations`: each appraisal's full explanation (inspectors, admins, the subject);
- `rm_breakdowns`: each appraisal's public breakdown (公示): rater groups as averages only, the
  itemised bonus and deduction list; version 0 is the current one, version k the k-th publication;
- `rm_placements`: what grading decides in the current explanation and breakdown (the rank, tier
  and grade figures, the summary, the status). Any change can move every placement of a year, so
  these small parts are kept apart: `rm_explanations` and version 0 of `rm_breakdowns` hold the
  rest (written again only when the appraisal's own score changes), and a reader joins the two
  (`assemble`: the same document, key for key, as a full computation; nothing is recomputed);
- `rm_person_history`, `rm_department_history`: per subject and year (score, rank, tier, grade,
  scheme version, status) — the histories and the department ranking;
- `rm_audit`: every event in log order with actor, business time, recording time, whether it is
  back-dated (domain/times.py), what it recorded and the figures it feeds; by appraisal, by actor
  and back-dated;
- `rm_publications`: every publication of a year (公示), version by version, as published.

Exactly once: the rows of a batch of events and the tracking position are written in one
transaction; after a restart the fold is rebuilt up to the tracking position (nothing written) and
processing resumes after it. A rebuild writes fresh `_next` tables from zero in large batches and
swaps them in with the tracking row in one transaction, so readers never see a gap. A batch moves
the tracking row only from where its projection left it: a worker that finds it moved (a rebuild
swapped in tables read up to another position) rolls back and restarts from the row.

An event the read side cannot process never stops it (COMMANDS.md § Bad input: a store written by
an earlier version may hold one). It is **set aside**, with what it feeds, and everything else goes on:
- an event that cannot be decoded, folded (its aggregate's apply code raises) or audited: its
  aggregate (an appraisal, a year, ...) is set back to the version before it (folded again from the
  store) and none of its later events is folded or audited: they would be folded on top of a state
  that lacks it. The figures shown are those of the log without them;
- an appraisal that cannot be scored or rendered: the first of its events after which it cannot
  (found by folding its events one at a time, scoring and rendering it alone after each) is set
  aside; the appraisal is scored from its facts before that event, which are kept apart (its later
  events are still folded and audited), so its rows stay what they last were and the year is graded
  with them;
- a year that still cannot be rendered with no appraisal to blame (grading, the export): the year
  is no longer rendered, its rows stay as last written (a rebuild copies them from the tables it
  replaces), its events are still folded and audited, and the entry names the last position folded
  when it failed.
A row that a store would refuse (a NUL character in a text, which PostgreSQL cannot keep, a
missing value, an integer beyond INTEGER) counts as an event that cannot be audited or rendered:
a refused write would fail the batch at every attempt (`_storable`; both stores alike, so that
their tables stay the same).
Each one is a row of `rm_setaside` (the position, the aggregate, the event's topic, the stage:
decode, fold or render, the error, when first seen, the code's version), a warning in the log when
met, and a notice on `/health` and on the admin and inspector pages. The log keeps every event: a
projection that starts (a restart, `appraisal project`, `serve`) and finds set-aside rows rebuilds
the read models from zero, so that a fixed version takes the events up (the same version sets
them aside again, deterministically, with their first-seen time kept).

Years pile up, memory does not (issue 19): the projection holds the organisation, the schemes, the
open years, and of a finalized year only its `Year` (its publications: what the three-year
preference of the next two years reads). Once a finalized year's rows are made, its appraisals
and what the renderer kept of it are let go (`LedgerState.let_go`, `Renderer.forget`); a restart
passes the events of the appraisals of the years finalized by its tracking row unread (neither
decoded nor folded: only their versions kept, `LedgerState.passed`), and a rebuild renders each
year when it is finalized, then lets it go. An event on a finalized year, or a render of it (a publication of an
earlier year that its preference reads), takes it back from the store first (each appraisal
folded up to the version it had) and it is let go again after the batch.
"""
