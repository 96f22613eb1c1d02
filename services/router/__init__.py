"""The router service: per-tenant version routing for gray releases."""
