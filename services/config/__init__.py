"""The config service: tenant lifecycle and tenant config (write side, projection, SDK)."""
