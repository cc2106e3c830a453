"""Browser sign-in pages: `/user` (account page, http §9.1), `/user/logout` (its sign-out form),
`/login/oidc/start` → provider → `/login/oidc/callback`, and `/login/link?token=…` (one-time links).

Thin: `AccountService` does the work. A refused sign-in is an HTML page saying why, with a 4xx
status, and no session cookie. The callback also requires the short-lived login cookie set at start
(bound to the state), so a callback URL made by someone else cannot sign this browser in as them.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from omnizap.accounts.service import (
    LOGIN_LINK_PATH,
    OIDC_CALLBACK_PATH,
    OIDC_START_PATH,
    OIDC_STATE_TTL,
    IssuedSession,
    safe_next_path,
)
from omnizap.accounts.shapes import owner_phone
from omnizap.accounts.tokens import clean_token, same_secret
from omnizap.catalog.interactions import RateLimited
from omnizap.core.errors import StickerPackError
from omnizap.web.api.accounts import (
    account_service,
    clear_session_cookie,
    client_address,
    current_session,
    session_cookie_values,
    set_session_cookie,
)
from omnizap.web.http.csrf import require_same_origin
from omnizap.web.pages.routes import SITE_NAME, render

USER_PATH = "/user"
USER_LOGOUT_PATH = "/user/logout"
AFTER_SIGN_IN_PATH = USER_PATH  # /stickers/profile does not exist yet (docs/accounts.md)
LOGIN_STATE_COOKIE = "omnizap_oidc_login"
PRIVATE_PAGE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
METHOD_LABELS = {
    "oidc": "single sign-on",
    "google_id_token": "Google",
    "login_link": "a sign-in link",
    "whatsapp_link": "WhatsApp",
}


def _private(response: Response) -> Response:
    response.headers.update(PRIVATE_PAGE)
    return response


def _message_page(request: Request, status: int, heading: str, message: str) -> Response:
    response = render(
        request,
        "sign_in_message.html",
        {
            "nav": "",
            "heading": heading,
            "message": message,
            "back_url": USER_PATH,
            "back_label": "Your account",
        },
        page={"title": f"{heading} · {SITE_NAME}", "description": message, "robots": "noindex, nofollow"},
        status_code=status,
    )
    return _private(response)


def _refused(request: Request, error: StickerPackError) -> Response:
    status = int(getattr(error, "http_status", 500) or 500)
    if status >= 500:
        message = "The sign-in provider could not be reached; try again in a moment."
        return _message_page(request, 502, "Sign-in unavailable", message)
    response = _message_page(request, status, "Sign-in refused", error.message)
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response


def _signed_in_redirect(request: Request, issued: IssuedSession, target: str) -> Response:
    service = account_service(request)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, issued, service.settings)
    return _private(response)


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.api_route(USER_PATH, methods=["GET", "HEAD"])
    @router.api_route(USER_PATH + "/", methods=["GET", "HEAD"])
    def user_page(request: Request) -> Response:
        service = account_service(request)
        session = current_session(request)
        account = None
        if session is not None:
            profile = service.me(session)
            account = {
                "name": session.name,
                "email": session.email,
                "phone": owner_phone(session.owner_jid),
                "owner_jid": session.owner_jid,
                "method": METHOD_LABELS.get(session.auth_method, session.auth_method),
                "expires_at": session.expires_at.isoformat(),
                "expires_label": session.expires_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "pack_count": profile["stats"]["total"],
            }
        sign_in_url = None
        if service.config.enabled:
            sign_in_url = f"{OIDC_START_PATH}?{urllib.parse.urlencode({'next': USER_PATH})}"
        response = render(
            request,
            "account.html",
            {
                "nav": "",
                "account": account,
                "sign_in_url": sign_in_url,
                "provider_label": "Google" if service.config.is_google else "single sign-on",
                "sign_out_path": USER_LOGOUT_PATH,
            },
            page={
                "title": f"Your account · {SITE_NAME}",
                "description": "Your account",
                "robots": "noindex, nofollow",
            },
        )
        return _private(response)

    @router.post(USER_LOGOUT_PATH, dependencies=[Depends(require_same_origin)])
    def user_logout(request: Request) -> Response:
        service = account_service(request)
        service.sign_out(session_cookie_values(request))
        response = RedirectResponse(USER_PATH, status_code=303)
        clear_session_cookie(response, service.settings)
        return _private(response)

    @router.get(OIDC_START_PATH)
    def oidc_start(request: Request) -> Response:
        service = account_service(request)
        try:
            url = service.begin_oidc(
                next_path=request.query_params.get("next"), client_address=client_address(request)
            )
        except StickerPackError as error:
            return _refused(request, error)
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("state", [""])[0]
        response = RedirectResponse(url, status_code=302)
        response.set_cookie(
            LOGIN_STATE_COOKIE,
            state,
            max_age=int(OIDC_STATE_TTL.total_seconds()),
            path=OIDC_CALLBACK_PATH,
            secure=service.settings.site_origin.lower().startswith("https://"),
            httponly=True,
            samesite="lax",
        )
        return _private(response)

    @router.get(OIDC_CALLBACK_PATH)
    def oidc_callback(request: Request) -> Response:
        service = account_service(request)
        params = request.query_params
        if params.get("error"):
            # The provider's own refusal (the person cancelled, or the client is misconfigured).
            error_code = "".join(ch for ch in params["error"][:64] if ch.isalnum() or ch in "_-")
            message = f"The provider did not sign you in ({error_code}); you can try again."
            response = _message_page(request, 400, "Sign-in cancelled", message)
            response.delete_cookie(LOGIN_STATE_COOKIE, path=OIDC_CALLBACK_PATH)
            return response
        state = clean_token(params.get("state"))
        bound = clean_token(request.cookies.get(LOGIN_STATE_COOKIE))
        if state is None or bound is None or not same_secret(state, bound):
            message = "This sign-in was not started in this browser or has expired; start it again."
            return _message_page(request, 400, "Sign-in refused", message)
        try:
            issued, next_path = service.complete_oidc(
                state=state, code=params.get("code"), client_address=client_address(request)
            )
        except StickerPackError as error:
            response = _refused(request, error)
            response.delete_cookie(LOGIN_STATE_COOKIE, path=OIDC_CALLBACK_PATH)
            return response
        response = _signed_in_redirect(request, issued, safe_next_path(next_path) or AFTER_SIGN_IN_PATH)
        response.delete_cookie(LOGIN_STATE_COOKIE, path=OIDC_CALLBACK_PATH)
        return response

    @router.get(LOGIN_LINK_PATH)
    def login_link(request: Request) -> Response:
        service = account_service(request)
        try:
            issued = service.redeem_login_link(
                request.query_params.get("token"), client_address=client_address(request)
            )
        except StickerPackError as error:
            return _refused(request, error)
        return _signed_in_redirect(request, issued, AFTER_SIGN_IN_PATH)

    return router
