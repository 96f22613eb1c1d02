"""tenantplane services and the runtime they share."""
