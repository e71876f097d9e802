"""Starts (or reuses) the local stack: Redis, the HAPI FHIR sandbox, fixtures and the gateway."""
