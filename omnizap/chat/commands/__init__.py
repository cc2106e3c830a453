"""Command handlers, one module per group: `pack`, `stickers` (creation and conversion), `chat`
(menu, auto-sticker, prefix, language) and `login`. Each handler is `(ctx, args) -> None` and sends
its replies through `ctx`."""
