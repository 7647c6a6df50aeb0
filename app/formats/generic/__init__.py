"""The generic format: pure codec modules and routes.py (see app/formats/base.py)."""
