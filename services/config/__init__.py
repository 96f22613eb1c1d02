"""The config service: tenant lifecycle and tenant config (write side, projection, SDK)."""

# The config read model's name (in its Redis keys and change subjects); here, so that
# naming it loads nothing else.
PROJECTION = "config"
