"""The `omnizap` command line."""
