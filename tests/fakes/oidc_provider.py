"""A real OpenID Connect provider on loopback for tests: discovery, JWKS, authorize, token.

- The RSA key is generated here with `cryptography` (2048 bits) and published in the JWKS.
- `/authorize` auto-approves `user` (no login form): it checks client_id, redirect_uri,
  response_type=code and an S256 `code_challenge`, then redirects with `code` and `state`.
- `/token` checks client authentication (basic or post), the code (single use), the redirect_uri
  and the PKCE `code_verifier` against the challenge, and returns an RS256-signed ID token carrying
  the nonce from the authorization request.
- `sign(claims)` makes ID tokens for other tests (tampered, wrong audience, expired …).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class PendingCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    used: bool = False


@dataclass
class FakeOidcProvider:
    client_id: str = "omnizap-test-client"
    client_secret: str = "test-client-secret"
    redirect_uris: tuple[str, ...] = ()
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "user-123",
            "email": "ana@example.org",
            "email_verified": True,
            "name": "Ana Test",
            "picture": "https://example.org/ana.png",
        }
    )
    # Extra or replaced claims in the ID tokens the token endpoint issues (wrong aud, old exp, …).
    id_token_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.key = RSAKey.import_key(pem, {"kid": "fake-key-1", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, PendingCode] = {}
        self.token_requests: list[dict[str, str]] = []
        self.authorize_requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeOidcProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                provider._handle_get(self)

            def do_POST(self) -> None:
                provider._handle_post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def issuer(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- tokens -------------------------------------------------------------------------------
    def sign(self, claims: Mapping[str, Any], *, key: RSAKey | None = None, kid: str | None = None) -> str:
        header = {"alg": "RS256", "kid": kid or "fake-key-1"}
        return jwt.encode(header, dict(claims), key or self.key)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 600,
            **self.user,
            **overrides,
        }

    # --- HTTP ---------------------------------------------------------------------------------
    def _send_json(self, handler: BaseHTTPRequestHandler, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.write(data)

    def _handle_get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        if parts.path == "/.well-known/openid-configuration":
            self._send_json(
                handler,
                200,
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": self.issuer + "/authorize",
                    "token_endpoint": self.issuer + "/token",
                    "jwks_uri": self.issuer + "/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                },
            )
        elif parts.path == "/jwks":
            self._send_json(handler, 200, {"keys": [self.key.as_dict(private=False)]})
        elif parts.path == "/authorize":
            self._authorize(handler, dict(urllib.parse.parse_qsl(parts.query)))
        else:
            self._send_json(handler, 404, {"error": "not_found"})

    def _authorize(self, handler: BaseHTTPRequestHandler, params: dict[str, str]) -> None:
        self.authorize_requests.append(params)
        problem = None
        if params.get("client_id") != self.client_id:
            problem = "unknown client_id"
        elif params.get("redirect_uri") not in self.redirect_uris:
            problem = "redirect_uri not registered"
        elif params.get("response_type") != "code":
            problem = "response_type must be code"
        elif params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            problem = "PKCE S256 code_challenge required"
        elif "openid" not in params.get("scope", "").split():
            problem = "scope must include openid"
        if problem is not None:
            self._send_json(handler, 400, {"error": "invalid_request", "error_description": problem})
            return
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = PendingCode(
                client_id=params["client_id"],
                redirect_uri=params["redirect_uri"],
                code_challenge=params["code_challenge"],
                nonce=params.get("nonce"),
            )
        query = urllib.parse.urlencode({"code": code, "state": params.get("state", "")})
        handler.send_response(302)
        handler.send_header("Location", f"{params['redirect_uri']}?{query}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _client_credentials(self, handler: BaseHTTPRequestHandler, form: dict[str, str]) -> tuple[str, str]:
        header = handler.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
        return form.get("client_id", ""), form.get("client_secret", "")

    def _handle_post(self, handler: BaseHTTPRequestHandler) -> None:
        if urllib.parse.urlsplit(handler.path).path != "/token":
            self._send_json(handler, 404, {"error": "not_found"})
            return
        length = int(handler.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(handler.rfile.read(length).decode()))
        self.token_requests.append(form)
        client_id, secret = self._client_credentials(handler, form)
        if client_id != self.client_id or secret != self.client_secret:
            self._send_json(handler, 401, {"error": "invalid_client"})
            return
        if form.get("grant_type") != "authorization_code":
            self._send_json(handler, 400, {"error": "unsupported_grant_type"})
            return
        with self._lock:
            pending = self.codes.get(form.get("code", ""))
            if pending is None or pending.used:
                self._send_json(
                    handler, 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
                )
                return
            pending.used = True
        if pending.redirect_uri != form.get("redirect_uri") or pending.client_id != client_id:
            self._send_json(
                handler, 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
            )
            return
        verifier = form.get("code_verifier")
        if not verifier or s256(verifier) != pending.code_challenge:
            self._send_json(
                handler, 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
            )
            return
        claims = self.claims(**({"nonce": pending.nonce} if pending.nonce else {}))
        claims.update(self.id_token_overrides)
        self._send_json(
            handler,
            200,
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self.sign(claims),
            },
        )
