"""Demo data for ``make demo`` (``manage.py seed_demo``): not used in production."""
