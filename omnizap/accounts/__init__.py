"""Web accounts and sign-in (http §7.1-7.3; docs/accounts.md).

- `tokens`: random tokens and their SHA-256 digests (only digests are stored).
- `oidc`: OpenID Connect provider (Google by default): discovery, JWKS, ID-token checks, code flow.
- `repository`: the SQL of accounts, sessions, sign-in links, login state, attempts and bans.
- `service`: `AccountService`, what the web routes and the CLI call.
- `shapes`: the original's JSON shapes (GoogleSessionData, the `/me` answer).
- `login_link`: the one-time WhatsApp → web login link the chat bot hands out (chat §7).
"""
