"""`python -m tenantplane.services.cli` runs tenantctl."""

from tenantplane.services.cli.main import main

main()
