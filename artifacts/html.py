"""A Markdown report as a complete, self-contained HTML page; the figures it links are shown as images."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

FIGURE_LINK = re.compile(r"^figures/[^/]+\.(png|svg)$")  # how a report links a drawn figure (artifacts.figures)
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:90rem;line-height:1.4}"
    "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}"
    "th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}"
    "code{background:#f3f3f3;padding:0 .2rem}blockquote{border-left:4px solid #c00;margin:1rem 0;padding:0 1rem}"
    "img{display:block;max-width:100%;margin:.5rem 0}"
)


def _figure_images(state: StateCore) -> None:
    """A link to a PNG figure whose text is plain (`[title](figures/x.png)`) becomes the image itself, its text
    the alt text: the Markdown file links the figure, the HTML page beside it shows it."""
    for block in state.tokens:
        if block.children:
            block.children = list(_with_images(block.children))


def _with_images(tokens: list[Token]) -> Iterator[Token]:
    i = 0
    while i < len(tokens):
        opened, text, closed = (tokens[i:i + 3] + [None, None])[:3]
        href = str(opened.attrGet("href") or "") if opened.type == "link_open" else ""
        if (FIGURE_LINK.match(href) and href.endswith(".png") and text and text.type == "text"
                and closed and closed.type == "link_close"):
            yield Token("image", "img", 0, attrs={"src": href, "alt": ""}, content=text.content, children=[text])
            i += 3
        else:
            yield opened
            i += 1


# raw HTML off: error messages and details from the services must show as text, never as markup
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_MARKDOWN.core.ruler.push("figure_images", _figure_images)


def to_html(markdown: str, title: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{_MARKDOWN.render(markdown)}</body>\n</html>\n"
    )
