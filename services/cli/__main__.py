"""`python -m services.cli` runs tenantctl."""

from services.cli.main import main

main()
