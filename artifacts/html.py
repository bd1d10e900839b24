"""A Markdown report as a complete, self-contained HTML page."""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

# raw HTML off: error messages and details from the services must show as text, never as markup
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:90rem;line-height:1.4}"
    "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}"
    "th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}"
    "code{background:#f3f3f3;padding:0 .2rem}blockquote{border-left:4px solid #c00;margin:1rem 0;padding:0 1rem}"
)


def to_html(markdown: str, title: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{_MARKDOWN.render(markdown)}</body>\n</html>\n"
    )
