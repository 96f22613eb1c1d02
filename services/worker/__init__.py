"""Workers: dramatiq pools running tenant jobs with their tenant's context."""
