"""The sticker bot: one transport-free command core (`messages`, router, commands) and thin transports.

Layout: `messages` holds the models every part shares; the core turns an `IncomingMessage` into
`Reply` objects; `transports/` maps each chat network's events to `IncomingMessage` and sends
`Reply` objects back. Nothing in the core imports a network library.

What a transport uses (docs/chat.md):

- `omnizap.chat.inbox.accept(database, message: IncomingMessage) -> bool` — call it for every
  incoming message (from the webhook or the long-poll loop), then answer the network at once. It
  enqueues one task on the task queue, keyed by (network, message_id); a redelivered message
  returns False and is not processed again. The task is `chat_message` (any worker), or
  `chat_message_live:<network>` for a network in `inbox.LIVE_NETWORKS`, whose session only one
  process holds: that process runs them (`pipeline.live_chat_worker`).
- `omnizap.chat.transports.registry.register(network: str, factory: Callable[[Settings], Transport])`
  — call it at import time of the transport module. The worker running `chat_message` tasks calls
  `registry.build(network, settings) -> Transport` (importing the package's modules when the network
  is not registered yet), so `factory` must build a working transport from `Settings` alone.
- `Transport.download(media, max_bytes=…)` raises `MediaUnavailable` for transient failures (the core
  retries with backoff) and may raise `omnizap.core.stickers.errors.MediaRejected(TOO_LARGE, …)`
  past `max_bytes`; `Transport.send` raises `ReplyNotSupported` for a kind the network cannot send
  (the core falls back) and anything else for a failed send (retried with backoff). It may return
  `SentMedia(message_id, media)` for a media reply: the core remembers it, so a later quote that
  names only that message id (the Cloud API's `context.id`) resolves to the media.

Modules: `router` (prefix, aliases, rate limit, login trigger, auto-sticker), `parsing`, `commands/`
(`pack`, `stickers`, `chat`, `login`), `layout` (the `/pack` reply layout), `i18n` (gettext
catalogues), `ratelimit`, `store` (chat tables), `context` (per-message services and retried
transport calls), `tasks` (the `chat_message` handler), `console` (the console session).
"""
