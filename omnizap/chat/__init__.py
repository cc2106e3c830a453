"""The sticker bot: one transport-free command core (`messages`, router, commands) and thin transports.

Layout: `messages` holds the models every part shares; the core turns an `IncomingMessage` into
`Reply` objects; `transports/` maps each chat network's events to `IncomingMessage` and sends
`Reply` objects back. Nothing in the core imports a network library.
"""
