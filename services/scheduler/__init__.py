"""The scheduler: job intake, fair per-tenant scheduling into worker pools, cron."""
