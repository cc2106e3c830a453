"""Session API (http §7.2-7.3): `{api}/auth/google/session` (GET, POST sign-in, DELETE sign-out),
`{api}/auth/logout` (POST, same as DELETE) and `{api}/me`. Thin: `AccountService` does the work.

Also the helpers every route uses for the session cookie (`omnizap_google_session`): reading all
its values, the current session, setting and clearing it.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from omnizap.accounts.service import AccountService, IssuedSession, Session
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput
from omnizap.web.api.errors import ApiError
from omnizap.web.api.models import MyPacksAnswer, SessionAnswer, SignedOutAnswer, error_answers, json_answer
from omnizap.web.api.routing import add_get_and_head, app_service
from omnizap.web.http.csrf import require_same_origin

SESSION_COOKIE = "omnizap_google_session"
MAX_BODY_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
TRUE_WORDS = {"1", "true", "yes", "y", "on"}


def account_service(request: Request) -> AccountService:
    return app_service(
        request, "account_service", lambda runtime: AccountService(runtime.database, runtime.settings)
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_cookie_values(request: Request) -> list[str]:
    """Every `omnizap_google_session` value the request carries (a browser may send several, e.g.
    host-only and domain cookies); Starlette's `request.cookies` keeps only one."""
    values: list[str] = []
    for header in request.headers.getlist("cookie"):
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == SESSION_COOKIE and value:
                values.append(value.strip('"'))
    return values


def current_session(request: Request) -> Session | None:
    """The signed-in session of this request, or None (anonymous). Cached on the request."""
    cached = getattr(request.state, "account_session", False)
    if cached is not False:
        return cached
    values = session_cookie_values(request)
    session = account_service(request).session_for(values) if values else None
    request.state.account_session = session
    return session


def _secure(settings: Settings) -> bool:
    return settings.site_origin.lower().startswith("https://")


def set_session_cookie(response: Response, issued: IssuedSession, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=issued.max_age_seconds,
        path="/",
        secure=_secure(settings),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE, "", max_age=0, path="/", secure=_secure(settings), httponly=True, samesite="lax"
    )


async def _json_body(request: Request) -> dict[str, object]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"The JSON body is over {MAX_BODY_BYTES} bytes.")
    if not body.strip():
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(
            'The body is not valid JSON; send an object like {"google_id_token": "…"}.'
        ) from error
    if not isinstance(parsed, dict):
        raise InvalidInput("The body must be a JSON object.")
    return parsed


def build_router(api_base: str) -> APIRouter:
    base = "/" + api_base.strip("/")
    router = APIRouter()
    session_path = f"{base}/auth/google/session"

    def read_session(request: Request) -> Response:
        service = account_service(request)
        return JSONResponse({"data": service.session_data(current_session(request))}, headers=NO_STORE)

    async def sign_in(request: Request) -> Response:
        service = account_service(request)
        body = await _json_body(request)
        token = body.get("google_id_token", body.get("id_token"))
        issued = await run_in_threadpool(
            service.sign_in_with_id_token,
            token,
            nonce=body.get("nonce"),
            client_address=client_address(request),
        )
        response = JSONResponse({"data": service.session_data(issued.session)}, headers=NO_STORE)
        set_session_cookie(response, issued, service.settings)
        return response

    def sign_out(request: Request) -> Response:
        service = account_service(request)
        service.sign_out(session_cookie_values(request))
        response = JSONResponse({"data": {"cleared": True}}, headers=NO_STORE)
        clear_session_cookie(response, service.settings)
        return response

    def me(request: Request) -> Response:
        service = account_service(request)
        raw = request.query_params.get("include_auto")
        include_auto = raw.strip().lower() in TRUE_WORDS if raw is not None else False
        data = service.me(current_session(request), include_auto=include_auto)
        return JSONResponse({"data": data}, headers=NO_STORE)

    csrf = [Depends(require_same_origin)]
    session_answer = {200: json_answer(SessionAnswer, "The caller's session (or `authenticated: false`).")}
    signed_out = {200: json_answer(SignedOutAnswer, "The session is ended and its cookie cleared.")}
    add_get_and_head(router, session_path, read_session, name="auth_session", responses=session_answer)
    router.add_api_route(
        session_path,
        sign_in,
        methods=["POST"],
        name="auth_sign_in",
        dependencies=csrf,
        responses={**session_answer, **error_answers(400, 401, 403, 404, 413, 429, 502)},
    )
    for path, name in ((session_path, "auth_sign_out"), (f"{base}/auth/logout", "auth_logout")):
        router.add_api_route(
            path,
            sign_out,
            methods=["DELETE"] if path == session_path else ["POST"],
            name=name,
            dependencies=csrf,
            responses={**signed_out, **error_answers(403, 413)},
        )
    add_get_and_head(
        router,
        f"{base}/me",
        me,
        name="my_profile",
        responses={200: json_answer(MyPacksAnswer, "The caller's own packs (none when anonymous).")},
    )
    return router
