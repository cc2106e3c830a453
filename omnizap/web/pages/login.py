"""The `/login/` page the chat bot's one-time links open (chat §7, omnizap.accounts.login_link).

GET checks the link and shows a button; only the POST uses the link up. Link previews and
prefetchers issue GETs, so a link is never burnt before its owner presses the button. The page
shows the owner id the link was issued to (the person's own number) and nothing about anyone else.
"""

from __future__ import annotations

import urllib.parse

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from omnizap.accounts.login_link import LoginLinkInvalid, verify_login_link
from omnizap.web.pages.routes import SITE_NAME, render

LINK_FIELDS = ("wa", "wa_ts", "wa_n", "wa_sig")
_STATUS = {"missing_signature": 403, "invalid_signature": 403}


def _page(
    request: Request, heading: str, message: str, *, status: int = 200, **context: object
) -> HTMLResponse:
    response = render(
        request,
        "login.html",
        {
            "nav": "",
            "heading": heading,
            "message": message,
            "form": None,
            "owner": None,
            "action": "",
            **context,
        },
        page={"title": f"{heading} · {SITE_NAME}", "description": message, "robots": "noindex, nofollow"},
        status_code=status,
    )
    # The query holds a one-time nonce: never cached, never sent on as a referrer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _refused(request: Request, error: LoginLinkInvalid) -> HTMLResponse:
    return _page(request, "Login link not valid", str(error), status=_STATUS.get(error.reason, 400))


def build_login_router(login_path: str = "/login/") -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(login_path, response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        runtime = request.app.state.runtime
        params = {name: request.query_params.get(name, "") for name in LINK_FIELDS}
        try:
            verify_login_link(runtime.database, runtime.settings, params, consume=False)
        except LoginLinkInvalid as error:
            return _refused(request, error)
        form = {name: value for name, value in params.items() if value}
        return _page(
            request,
            "Sign in to OmniZap",
            "This link came from the OmniZap bot on WhatsApp. It works once.",
            form=form,
            action=login_path,
        )

    @router.post(login_path, response_class=HTMLResponse)
    async def login_submit(request: Request) -> HTMLResponse:
        runtime = request.app.state.runtime
        body = (await request.body()).decode("utf-8", "replace")
        fields = urllib.parse.parse_qs(body, max_num_fields=len(LINK_FIELDS) + 2)
        params = {name: (fields.get(name) or [""])[0] for name in LINK_FIELDS}
        try:
            owner = verify_login_link(runtime.database, runtime.settings, params, consume=True)
        except LoginLinkInvalid as error:
            return _refused(request, error)
        return _page(request, "Link accepted", "This one-time link is now used up.", owner=owner)

    return router
