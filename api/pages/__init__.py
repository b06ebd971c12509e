"""Server-rendered pages for people (sign in, home, a year's results, an appraisal's explanation,
the audit trail): Jinja2 templates over the same queries and commands as the HTTP API."""

from api.pages import admin, notice, rules
from api.pages.inspector import router as inspector_router
from api.pages.routes import router

router.include_router(inspector_router)  # the inspector's jobs
router.include_router(admin.router)  # the admin's jobs
router.include_router(notice.router)  # the 公示 as an office posts it
router.include_router(rules.router)  # the admin's rule changes (job 4)

__all__ = ["router"]
