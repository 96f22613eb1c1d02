"""An example service: billing, with its own domain events, read models and rebuilds."""
