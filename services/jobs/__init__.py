"""The jobs domain: the job aggregate, its log, its queue message, its history, its client."""
