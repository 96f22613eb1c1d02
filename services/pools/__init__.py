"""Worker pools as desired state: which pools should run, and backends that make it so."""
