"""The browser fixture of the labeling page's browser tests (one Chromium per test)."""

from tests.routing.test_browser import browser_page  # noqa: F401 - a fixture, shared
