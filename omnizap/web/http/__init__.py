"""The request pipeline shared by every route: request ids, timing and metrics, access logs,
security headers, body limits, and the cache of serialized response bodies."""
