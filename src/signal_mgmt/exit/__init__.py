"""The EXIT path: detection (Stage A), episodes and ExitIntentService (Stage B)."""
