"""Chat networks: each module maps its network's events to `IncomingMessage`, hands them to
`omnizap.chat.inbox.accept`, and registers a `Transport` factory in `registry` for the worker."""
