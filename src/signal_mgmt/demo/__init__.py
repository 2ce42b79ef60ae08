"""The simulated NSE trading day behind ``signal-mgmt demo``."""
