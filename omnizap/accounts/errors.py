"""Why a sign-in was refused. Each carries its HTTP status and a message saying what to do."""

from __future__ import annotations

from omnizap.core.errors import NotAllowed, StickerPackError


class SignInDisabled(StickerPackError):
    """No provider is configured (the original: 404 "Login Google desabilitado.")."""

    code = "SIGN_IN_DISABLED"
    http_status = 404


class SignInRejected(StickerPackError):
    """The credential is not acceptable: bad signature, wrong audience or issuer, expired, replayed."""

    code = "UNAUTHORIZED"
    http_status = 401


class SignInInvalid(StickerPackError):
    """The request itself is malformed: missing token, unknown or used state, bad link."""

    code = "INVALID_INPUT"
    http_status = 400


class AccountBanned(NotAllowed):
    def __init__(self) -> None:
        super().__init__("This account is blocked by the administrators; no session was started.")


class EmailNotVerified(NotAllowed):
    def __init__(self) -> None:
        super().__init__(
            "The provider says this e-mail address is not verified; verify it and sign in again."
        )


class ProviderUnavailable(StickerPackError):
    """The issuer could not be reached or answered nonsense (the original: 502)."""

    code = "BAD_GATEWAY"
    http_status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)
