"""The HTTP side of OmniZap Stickers: the app (`omnizap.web.app`), its JSON API (`api`), the
server-rendered pages (`pages`) and the request pipeline (`http`: request ids, metrics, logs, headers)."""
