"""Feature flags stored in `feature_flag`, with percentage rollout."""
