"""The lake: several collector replicas sharing one DuckLake (PostgreSQL catalog + Parquet files)."""
