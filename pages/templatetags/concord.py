"""Template filters for annotator pages."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from pages.rendering import markdown_html

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Render task text (Markdown) as sanitised HTML: never use ``|safe`` on payload data."""
    return markdown_html(text)
