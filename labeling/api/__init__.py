"""The REST API (``/api/v1/``): organization API keys or a signed-in admin's session, one tenant scope."""
