"""The `signal-mgmt` command line."""
