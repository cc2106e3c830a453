"""Loopback HTTP fakes of the chat networks' APIs, started by tests (real sockets, no mocks)."""
