"""The application service: how a command is decided, retried and written (`AppraisalLedger`).

**Decided.** `AppraisalLedger.submit` takes commands in order, one from HTTP or the pages, thousands
from a batch import. Inside a unit of work each command is decided by the domain's handlers
(`domain/handlers.py`) on the aggregates it needs (its appraisal, year, organisation, schemes):
handlers validate everything and only then trigger events; a refused command records nothing and
never takes an accepted one with it. Commands on one appraisal are decided one after another
within a process. A command id already accepted with the same content answers the first answer
and records nothing; the same id with other content is refused (field `id`).

**Written.** The events of up to 500 commands and their rows in the command-id table go in one
transaction (`api/store/storage.py` extends the library's recorders), with the hash chain's rows
(`api/store/chain.py`, the one place the chain is computed). Every write carries its read set:
each aggregate the batch read or changed, at the version it was read. Under the log's lock,
before any position is drawn, the store refuses the write when one of them has moved on
(another process wrote to it); a refused write leaves no gap in the log. Concurrent requests'
writes share a transaction (`api/store/groupcommit.py`): a batch that clashes inside the group is
refused alone, so one request's conflict never refuses another's.

**Retried.** Here and only here (`AppraisalLedger._submit_batch`): a write conflict decides the
batch again on the current state (its appraisal, year and organisation brought up to date), up to
`MAX_ATTEMPTS` times, after the first with a short random pause; a store that could not take the
write is tried `STORE_ATTEMPTS` times, `STORE_PAUSE` apart. What outlasts that, the HTTP layer
answers with 409 or 503.

Below this package: `api/store/` (the event store) and `domain/`. Above it: the read models
(`projections/`), the HTTP API, the pages and the command line.
"""

from api.ledger.application import AppraisalLedger, Outcome, Refused

__all__ = ["AppraisalLedger", "Outcome", "Refused"]
