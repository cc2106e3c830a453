"""OpenID Connect against one issuer: Google by default, any issuer by configuration.

- The discovery document (`<issuer>/.well-known/openid-configuration`) and the JWKS it names are
  fetched from the issuer and kept for `METADATA_TTL`; an ID token signed with a key id the cached
  set lacks makes one refetch (the issuer rotated its keys).
- ID tokens are checked locally (no tokeninfo round trip): signature against the JWKS with an
  asymmetric algorithm the issuer announces, `iss`, `aud` (and `azp` when there are several
  audiences), `exp`/`iat`/`nbf` with `CLOCK_SKEW`, `sub`, and the nonce.
- The authorization-code flow (authlib's OAuth2 client): PKCE S256, state and nonce; the caller keeps
  state, nonce and verifier (in the database) and hands them back at the callback.

Issuers must be https, except loopback hosts (a local provider, the tests' fake).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import OAuth2Client
    from joserfc import jwt
    from joserfc.jwk import KeySet

from omnizap.accounts.errors import EmailNotVerified, ProviderUnavailable, SignInInvalid, SignInRejected
from omnizap.accounts.tokens import same_secret
from omnizap.config import Settings

GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_ISSUER_ALIASES = (GOOGLE_ISSUER, "accounts.google.com")  # Google signs either form
METADATA_TTL = dt.timedelta(hours=1)
CLOCK_SKEW = dt.timedelta(seconds=60)
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
MAX_ID_TOKEN_CHARS = 16_384


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderConfig:
        issuer = (settings.oidc_issuer_url or GOOGLE_ISSUER).strip().rstrip("/")
        return cls(
            issuer=issuer,
            client_id=(settings.oidc_client_id or settings.sticker_web_google_client_id).strip(),
            client_secret=settings.oidc_client_secret or settings.sticker_web_google_client_secret,
            scopes=settings.oidc_scopes.strip() or "openid email profile",
            timeout_seconds=settings.oidc_http_timeout_seconds,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.client_id)

    @property
    def is_google(self) -> bool:
        return self.issuer == GOOGLE_ISSUER

    @property
    def provider_name(self) -> str:
        return "google" if self.is_google else "oidc"

    @property
    def accepted_issuers(self) -> tuple[str, ...]:
        return GOOGLE_ISSUER_ALIASES if self.is_google else (self.issuer,)


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who the issuer vouches for, from a checked ID token."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    picture: str | None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint_url(url: str, what: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise ProviderUnavailable(f"The sign-in provider's {what} must be an https URL; got {url[:200]!r}.")


class OidcProvider:
    """One issuer's metadata and keys (cached, thread-safe) and the checks and calls made with them."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        http: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        self._http = http or httpx.Client(timeout=config.timeout_seconds, follow_redirects=False)
        self._monotonic = monotonic
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    def close(self) -> None:
        self._http.close()

    # --- fetched documents --------------------------------------------------------------------
    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        check_endpoint_url(url, what)
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise ProviderUnavailable(
                f"The sign-in provider's {what} could not be fetched ({type(error).__name__}); "
                "try again later."
            ) from error
        if response.status_code != 200:
            raise ProviderUnavailable(
                f"The sign-in provider's {what} answered HTTP {response.status_code}; try again later."
            )
        try:
            document = response.json()
        except ValueError as error:
            raise ProviderUnavailable(f"The sign-in provider's {what} is not JSON.") from error
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"The sign-in provider's {what} is not a JSON object.")
        return document

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            fresh = self._monotonic() - self._metadata_at < METADATA_TTL.total_seconds()
            if self._metadata is not None and fresh:
                return self._metadata
        url = self.config.issuer + "/.well-known/openid-configuration"
        document = self._get_json(url, "discovery document")
        announced = str(document.get("issuer") or "").rstrip("/")
        if announced not in self.config.accepted_issuers:
            raise ProviderUnavailable(
                f"The discovery document names issuer {announced[:200]!r}, not the configured "
                f"{self.config.issuer!r}; check OIDC_ISSUER_URL."
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise ProviderUnavailable(f"The discovery document has no {field}.")
            check_endpoint_url(document[field], field)
        with self._lock:
            self._metadata, self._metadata_at = document, self._monotonic()
        return document

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            fresh = self._monotonic() - self._keys_at < METADATA_TTL.total_seconds()
            if self._keys is not None and fresh and not refresh:
                return self._keys
        # authlib and joserfc load on the first sign-in, not with the web app every worker imports.
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        document = self._get_json(self.metadata()["jwks_uri"], "key set (JWKS)")
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise ProviderUnavailable("The sign-in provider's key set (JWKS) cannot be read.") from error
        with self._lock:
            self._keys, self._keys_at = keys, self._monotonic()
        return keys

    def _algorithms(self) -> list[str]:
        announced = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        allowed = [name for name in announced if name in ASYMMETRIC_ALGORITHMS]
        return allowed or ["RS256"]

    # --- ID tokens ----------------------------------------------------------------------------
    def verify_id_token(self, id_token: str, *, expected_nonce: str | None) -> VerifiedIdentity:
        """The identity in `id_token`, or SignInRejected saying which check failed.

        `expected_nonce`: the nonce this server sent (code flow), which the token must carry; None
        when the caller has none (then a nonce in the token is not checked against anything)."""
        if not isinstance(id_token, str) or not id_token or len(id_token) > MAX_ID_TOKEN_CHARS:
            raise SignInInvalid("The ID token is missing or too long; send the credential the provider gave.")
        if id_token.count(".") != 2:
            raise SignInRejected("The ID token is not a signed JWT (header.payload.signature).")
        algorithms = self._algorithms()
        try:
            token = self._decode(id_token, algorithms, refresh=False)
        except _UnknownKey:
            try:
                token = self._decode(id_token, algorithms, refresh=True)
            except _UnknownKey as error:
                raise SignInRejected(
                    "The ID token is signed with a key the issuer does not publish."
                ) from error
        return self._check_claims(dict(token.claims), expected_nonce)

    def _decode(self, id_token: str, algorithms: list[str], *, refresh: bool) -> jwt.Token:
        from joserfc import jwt
        from joserfc.errors import InvalidKeyIdError, JoseError

        keys = self._key_set(refresh=refresh)
        try:
            return jwt.decode(id_token, keys, algorithms=algorithms)
        except InvalidKeyIdError as error:
            raise _UnknownKey from error
        except (ValueError, TypeError) as error:
            raise SignInRejected("The ID token cannot be read; sign in again.") from error
        except JoseError as error:
            raise SignInRejected(
                f"The ID token's signature or format is not valid ({error.error}); sign in again."
            ) from error

    def _check_claims(self, claims: Mapping[str, Any], expected_nonce: str | None) -> VerifiedIdentity:
        config = self.config
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer.rstrip("/") not in config.accepted_issuers:
            raise SignInRejected("The ID token was not issued by the configured provider (iss).")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or config.client_id not in audiences:
            raise SignInRejected("The ID token was issued for another application (aud).")
        if len(audiences) > 1 and claims.get("azp") != config.client_id:
            raise SignInRejected("The ID token names another authorized party (azp).")
        now = self._clock().timestamp()
        skew = CLOCK_SKEW.total_seconds()
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires <= now - skew:
            raise SignInRejected("The ID token has expired (exp); sign in again.")
        issued = claims.get("iat")
        if issued is not None and (not isinstance(issued, int | float) or issued > now + skew):
            raise SignInRejected("The ID token was issued in the future (iat); check the clocks.")
        not_before = claims.get("nbf")
        if not_before is not None and (not isinstance(not_before, int | float) or not_before > now + skew):
            raise SignInRejected("The ID token is not valid yet (nbf).")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise SignInRejected("The ID token names no subject (sub).")
        nonce = claims.get("nonce")
        if expected_nonce is not None and (
            not isinstance(nonce, str) or not same_secret(nonce, expected_nonce)
        ):
            raise SignInRejected("The ID token's nonce does not match this sign-in; start again.")
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        verified = claims.get("email_verified")
        if isinstance(verified, str):
            verified = verified.lower() == "true"
        if email is not None and verified is False:
            raise EmailNotVerified()
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        picture = claims.get("picture") if isinstance(claims.get("picture"), str) else None
        return VerifiedIdentity(
            issuer=config.issuer,
            subject=subject,
            email=email.strip().lower()[:255] if email else None,
            email_verified=bool(verified) if email else False,
            name=name[:255] if name else None,
            picture=picture[:1000] if picture and picture.startswith("https://") else None,
        )

    # --- authorization-code flow ---------------------------------------------------------------
    def _oauth_client(self, redirect_uri: str) -> OAuth2Client:
        from authlib.integrations.httpx_client import OAuth2Client

        metadata = self.metadata()
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        auth_method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=auth_method,
            timeout=self.config.timeout_seconds,
        )

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        endpoint = self.metadata()["authorization_endpoint"]
        with self._oauth_client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, code_verifier=code_verifier, nonce=nonce
            )
        return url

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> str:
        """The ID token the token endpoint returns for `code`; SignInRejected when it refuses."""
        from authlib.integrations.httpx_client import OAuthError

        endpoint = self.metadata()["token_endpoint"]
        try:
            with self._oauth_client(redirect_uri) as client:
                token = client.fetch_token(
                    endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=redirect_uri,
                )
        except OAuthError as error:
            raise SignInRejected(
                f"The provider refused the sign-in code ({error.error}); start the sign-in again."
            ) from error
        except (ValueError, KeyError) as error:
            raise ProviderUnavailable(
                "The provider's token endpoint answered something unreadable."
            ) from error
        except Exception as error:  # httpx2 transport errors; no shared base class with httpx
            if type(error).__module__.startswith(("httpx", "httpcore")):
                raise ProviderUnavailable(
                    f"The provider's token endpoint could not be reached ({type(error).__name__})."
                ) from error
            raise
        id_token = token.get("id_token") if isinstance(token, Mapping) else None
        if not isinstance(id_token, str):
            raise SignInRejected("The provider returned no ID token; check that the `openid` scope is set.")
        return id_token


class _UnknownKey(Exception):
    """The token's key id is not in the cached key set."""


def pkce_challenge(code_verifier: str) -> str:
    """S256 code challenge of a verifier (RFC 7636 §4.2); used by the tests' fake provider too."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
