"""Security tests: tenant isolation and other cross-cutting guarantees."""
