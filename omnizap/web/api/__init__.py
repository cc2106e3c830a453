"""JSON API routers. Routes raise domain errors; `errors` turns them into the JSON error shape."""
