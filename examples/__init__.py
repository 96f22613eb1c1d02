"""Small services built on tenantplane's public SDK (`import tenantplane`)."""
