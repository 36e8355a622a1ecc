"""The REST API (``/api/v1/``) for every app: organization API keys or a signed-in admin's session, one tenant scope."""
