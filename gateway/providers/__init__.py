"""Provider adapters: one file per vendor, registered in `registry.py`."""
