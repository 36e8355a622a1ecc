"""Task text as annotators see it: Markdown rendered with raw HTML off, then sanitised with an allow-list.

Payloads are LLM output and customer data: nothing in them is trusted. markdown-it-py never passes raw HTML
through (``html: False``), and nh3 strips every tag, attribute and URL scheme outside the lists below, so even a
renderer bug cannot put a script, an event handler or a ``javascript:`` link on the page.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code", "em", "strong", "del", "s",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


# Every task is shown to several annotators: a process remembers the HTML of recent texts (a pure function of the
# text). Long texts are rendered each time rather than held.
_MEMO_MAX_CHARS = 16_000


def markdown_html(text: str) -> SafeString:
    """Sanitised HTML for ``text`` (Markdown). Safe to put on a page as it is."""
    text = text if isinstance(text, str) else str(text)
    return _markdown_memo(text) if len(text) <= _MEMO_MAX_CHARS else _markdown_html(text)


@lru_cache(maxsize=2048)
def _markdown_memo(text: str) -> SafeString:
    return _markdown_html(text)


def _markdown_html(text: str) -> SafeString:
    rendered = _markdown.render(text)
    cleaned = nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3 just above
