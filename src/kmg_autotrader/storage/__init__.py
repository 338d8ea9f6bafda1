"""Persistence: SQLAlchemy models, migrations and repositories (the only code that writes rows),
plus the parquet candle store."""
