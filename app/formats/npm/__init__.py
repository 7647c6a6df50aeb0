"""The npm format: pure codec modules and routes.py (see app/formats/base.py)."""
