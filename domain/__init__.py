"""The domain: pure (standard library, `eventsourcing.domain`, pydantic; a test keeps it so).

Scheme documents and their validation (`scheme.py`), the one number grammar (`numbers.py`),
business time (`times.py`), command models (`commands.py`), events and aggregates
(`aggregates.py`), decisions on commands (`handlers.py`: decide outside, apply inside; a refused
command records nothing), the log folded into state (`log.py`), the scoring engine and its trace
(`scoring.py`, `trace.py`), grading (`grading.py`), the results export and the explanation
(`results.py`), replays and scheme diffs (`replay.py`, `scheme_diff.py`).

Decisions where the specification is silent
-------------------------------------------

- A business time must carry an offset; missing `at` means now. Appeal windows, the publicity
  period and decision deadlines run on business time. Only a batch import and callers with the
  `admin` or `recorder` grant give `at` (`domain/times.py`); anyone else's business time is the
  server's clock: the HTTP layer drops an `at` within 5 minutes of it and refuses one further
  away (422 `business-time`), pages forward none. No `at` more than 5 minutes after the server's
  clock is accepted from anyone. A re-sent command without the grant is answered as the same
  command only while its `at` is within those 5 minutes (or when it gives none).
- Periods are `2025`, `2025-06`, `2025-Q2`, `2025-H1` or `2025-W23`, inside the appraisal's year.
- Measurements are never negative; an input whose unit is `%` is at most 100.
- An appraisal records its subject as it was when opened (position, department, approved posts):
  moving a person later does not rewrite a past year.
- A department's appeals are filed by its head. An item is appealed at most once; an appeal cannot
  predate its item; the window is the scheme's `appeal_window_days` from the later of the item's
  business time and the year's first publication. The decider must differ from the item's recorder
  and from the appellant; a decision cannot predate its appeal. `amended` applies to direct
  deductions only, with points of the catalogue's sign and no larger in size (`-20` → `-10` or `0`).
- A tie-break orders any tie group whose members it all names (the latest such tie-break wins); the
  members then get consecutive ranks.
- A vetoed person always gets the bottom tier and grade. The last-ranked department with 0
  approved posts is shown with `staffing_cut` of 0 posts.
- `staffing_allocation_preference` needs tier 1 this year and in the latest published results of
  each of the two previous years.
- Publishing the same scheme version again with identical content is accepted as a no-op; with other
  content it is refused.
- The publicity period counts Monday–Friday as working days (no holiday calendar yet).
- **Numbers** (COMMANDS.md): one parser, `domain/numbers.py`, reads every number of a command, an
  import line and a scheme document (`^-?[0-9]{1,9}(\\.[0-9]{1,6})?$`; a JSON number through its
  shortest text, so one below 0.0001, written `1e-05` by that text, must be sent as a string).
  Counts and every other integer (approved posts, years, versions, days, tier ids) take no decimal
  point: `"3"` and `3`, never `"3.0"`, `3.0` or `true`. Anything else is refused as `number-format`
  naming the field (`score`, `count`, `document.individual[0].rules[0].points_each`). A scheme
  version recorded before the grammar is read again as it was accepted then.
- **Texts of exact values are bounded** (`shown`, `exact`, parameters): a store written before the
  grammar may hold `1E-5000` or `1E+5000`. A shown value with more than 28 digits, and an exact
  text with more than 60 digits in a numerator, denominator or decimal, is the value rounded half
  up to 28 significant digits after `≈` (`≈1.000000000000000000000000000E+5000`); `1E-5000` itself
  stays exact. Ranking uses that rounded value; the Excel export writes such a figure as text.
- **Anonymity of ratings** (one policy, one function: `projections.documents.public_breakdown`,
  used for the 公示 breakdowns and for every staff view of the HTTP API). Staff, the person rated
  included, never see a rater's identity nor an individual score other than their own (a rater
  sees the ratings they gave, the subject their self-ratings). A rater group's mean is shown only
  when the group has at least 3 raters (`MIN_RATERS_SHOWN` in `projections/documents.py`); a
  smaller group shows its mean as withheld (`null`, listed in the figure's `withheld`) beside its
  count (`role.raters`), and the others' combined score (`others`) is withheld too as soon as one
  group is (with the composite it would give the withheld mean back). The period composite, R and
  the leaf scores stay: they are the score's ingredients. (So where a period has a single rater
  group and no self-rating, its composite is that group's mean: the policy accepts this.) Admins and
  inspectors see the full trace. Others see a colleague's breakdown only once the year is
  published, and then as published (the latest publication, any earlier one on request).

Surveys (满意度测评, SCORING.md §12)
-----------------------------------

A scheme input of kind `survey` names its options (ids unique, weights in [0, 1] in the number
grammar, at least one exactly 1) and `min_responses` (≥ 1); `survey.record` (recorder grant; HTTP
`POST /appraisals/{appraisal}/surveys`, the batch import, the Excel sheet 满意度 surveys) records one
questionnaire round as counts per option. Where SCORING.md is silent:
- **Reading.** `proportional` and `shortfall` read a survey as a measured rate; `per_occurrence`,
  `excess_over_allowance` and `minimum_count` refuse one (`scheme-invariants`: a rate is no number
  of cases). Only a survey has `options` and `min_responses`.
- **Recording.** Every option of the survey has a count (an integer ≥ 0 in the number grammar:
  `"40"`, `40`, never `40.0`), no other option, at least 1 response in all: refused naming
  `counts.<option>` (`survey-options`, `survey-counts`, `number-format`) or `counts`. The counts
  are stored in the scheme's option order.
- **Too few responses.** Fewer than `min_responses` over the rounds that count (none recorded
  included) is always missing, whatever `required` says: the appraisal is `incomplete` ("survey
  public_satisfaction: 12 responses, fewer than 30"), a proportional base scores 0 and a rule
  adjusts nothing (as for a required measurement).
- **Appeals.** A round is appealed like a counted item (by the subject, a department's head for a
  department; within the window); `overturned` strikes it (it stops counting, and may take the
  survey below `min_responses`); `upheld` changes nothing; `amended` is refused for a round
  (`amend-deductions`: §8 amends direct deductions only, and a round's counts are facts to be
  recorded again, not points to lower). A corrected round is a new `survey.record` after the wrong
  one is overturned.
- **Another scheme version** (replay, adoption): a round naming an option the version has not is
  not applicable as a whole (listed in the replay, never partly counted); an option the version
  added and a round lacks counts 0 for that round; a survey the version does not read lists its
  rounds as not applicable.
- **The trace.** One figure per round that counts (`survey-round:<ref>`: its weighted sum
  Σ count × weight, the counts per option, responses, recorder, business and recording time,
  evidence) and one per survey (`survey:<input>`: the rate as 100 / responses × each round's
  weighted sum, the rounds, responses, weighted sum, `min_responses`, the weights, the struck
  rounds); the reading base or rule names it (`<input>.figure`) and the rounds behind it; a
  proportional base reading a survey is points / target × rate, at most the points. All exact
  (`Fraction`); the rate is shown rounded like any figure (91 % → `91.00`, `9200/103` exact).
  The replay compares the survey's rate with the rule figures, the scheme diff its options
  (added, removed, re-weighted, renamed, reordered) and `min_responses`.
- **公示.** The breakdown lists each round among the items (its counts per option, struck ones
  marked); counts are never per respondent, so nothing is withheld.
"""
