"""People's accounts on the web side. For now: the one-time login link the chat bot hands out."""
