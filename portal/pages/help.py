"""Help: the list of help topics (/portal/help), one page of questions and answers per part of the portal
(/portal/help/{topic}), and the self-check (/portal/self-check) that points to the page that helps with
each answer. Nothing here reads or writes the record."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web.i18n import gettext as _

from ..core import PREFIX, Portal, Visit
from ..guide import GUIDE_PAGE
from ..help_topics import HELP_PAGE, TOPICS, topic
from ..self_check import ANSWERS, QUESTIONS, check_answers

SELF_CHECK = f"{PREFIX}/self-check"


def add_help_routes(router: APIRouter, portal: Portal) -> None:
    async def help_index(visit: Visit) -> Response:
        return visit.render("portal/help.html", title=_("Help"), topics=TOPICS, guide_url=GUIDE_PAGE,
                            self_check_url=SELF_CHECK)

    router.get(HELP_PAGE, include_in_schema=False)(portal.page(help_index))

    @router.get(f"{HELP_PAGE}/{{key}}", include_in_schema=False)
    async def help_topic(request: Request, key: str) -> Response:
        visit = await portal.visit(request)
        found = topic(key)
        if found is None:
            return portal.message(request, _("Page not found"), _("We have no help page with that name."), 404,
                                  session=visit.session, action_url=HELP_PAGE, action_text=_("See all help pages"))
        return visit.render("portal/help_topic.html", title=_("Help: %(title)s") % {"title": found.title}, topic=found)

    def self_check_page(visit: Visit, status: int = 200, **context: object) -> Response:
        context.setdefault("form", {})
        context.setdefault("errors", {})
        return visit.render("portal/self_check.html", status, title=_("Self-check: how do I use my portal?"),
                            questions=QUESTIONS, answers=ANSWERS, **context)

    async def self_check(visit: Visit) -> Response:
        return self_check_page(visit)

    router.get(SELF_CHECK, include_in_schema=False)(portal.page(self_check))

    @router.post(SELF_CHECK, include_in_schema=False)
    async def self_check_answers(request: Request) -> Response:
        visit = await portal.visit(request)
        await visit.check_csrf()
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        outcomes, errors = check_answers(form)
        if errors:
            return self_check_page(visit, 400, form=form, errors=errors)
        return visit.render("portal/self_check_result.html", title=_("Your self-check"), outcomes=outcomes,
                            answers=ANSWERS, to_work_on=[o for o in outcomes if o.needs_help],
                            self_check_url=SELF_CHECK)
