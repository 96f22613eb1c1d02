"""`tenantctl`, the operator's command line."""
