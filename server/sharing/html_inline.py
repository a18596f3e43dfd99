"""Inline Markdown to HTML for the server-rendered share page: `static/inline.js`'s rules.

Every piece of text is escaped; links are made only for http(s) URLs (a new
tab, no referrer), so `javascript:` and friends stay literal text. A port of
the page's renderer, kept rule for rule so a shared conversation reads as it
did on the page.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlsplit

ESCAPABLE = set("\\`*_{}[]()#+-.!|~<>")
BARE_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
ANGLE_URL = re.compile(r"<(https?://[^\s<>]+)>", re.IGNORECASE)
TRAILING = re.compile(r"[.,;:!?'\")\]*_~]$")


def _word(ch: str) -> bool:
    return ch.isalnum()


def safe_href(href: str) -> str | None:
    """The URL, if it is an absolute http(s) one."""
    try:
        parts = urlsplit(href)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    return href


def link(href: str, inner_html: str) -> str:
    return f'<a href="{escape(href)}" target="_blank" rel="noopener noreferrer">{inner_html}</a>'


def render_inline(text: str, in_link: bool = False) -> str:
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append(escape("".join(buf)))
            buf.clear()

    i = 0
    while i < len(text):
        ch = text[i]
        hit: tuple[str, int] | None = None
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch == "\\" and nxt in ESCAPABLE and nxt:
            buf.append(nxt)
            i += 2
            continue
        if ch == "\n":
            flush()
            out.append("<br>")
            i += 1
            continue
        if ch == "`":
            hit = _code_span(text, i)
        elif ch in "*_~":
            hit = _emphasis(text, i, in_link)
        elif ch == "[" and not in_link:
            hit = _link(text, i)
        elif ch == "<" and not in_link:
            hit = _angle_link(text, i)
        elif ch in "hH" and not in_link and not (i > 0 and _word(text[i - 1])):
            hit = _bare_link(text, i)
        if hit is not None:
            flush()
            out.append(hit[0])
            i = hit[1]
            continue
        buf.append(ch)
        i += 1
    flush()
    return "".join(out)


def _code_span(text: str, i: int) -> tuple[str, int]:
    n = 0
    while i + n < len(text) and text[i + n] == "`":
        n += 1
    fence = "`" * n
    j = text.find(fence, i + n)
    while j != -1 and j + n < len(text) and text[j + n] == "`":  # the run must match exactly
        k = j
        while k < len(text) and text[k] == "`":
            k += 1
        j = text.find(fence, k)
    if j == -1:
        return escape(fence), i + n
    body = text[i + n : j].replace("\n", " ")
    if len(body) >= 2 and body.startswith(" ") and body.endswith(" ") and body.strip():
        body = body[1:-1]
    return f"<code>{escape(body)}</code>", j + n


def _emphasis(text: str, i: int, in_link: bool) -> tuple[str, int] | None:
    ch = text[i]
    double = text[i + 1 : i + 2] == ch
    if ch == "~" and not double:
        return None
    marker = ch * (2 if double else 1)
    start = i + len(marker)
    if start >= len(text) or text[start].isspace():
        return None
    if ch == "_" and i > 0 and _word(text[i - 1]):  # snake_case is not emphasis
        return None
    j = text.find(marker, start + 1)
    while j != -1:
        after = text[j + len(marker) : j + len(marker) + 1]
        closes = (
            not text[j - 1].isspace()
            and (double or text[j + 1 : j + 2] != ch)
            and not (ch == "_" and after != "" and _word(after))
        )
        if closes:
            break
        j = text.find(marker, j + (2 if double else 1))
    if j == -1:
        return None
    while double and text[j + 2 : j + 3] == ch:  # "***both***": strong outside
        j += 1
    tag = "del" if ch == "~" else "strong" if double else "em"
    return f"<{tag}>{render_inline(text[start:j], in_link)}</{tag}>", j + len(marker)


def _link(text: str, i: int) -> tuple[str, int] | None:
    depth, j = 0, i
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "[":
            depth += 1
        elif text[j] == "]":
            depth -= 1
            if depth == 0:
                break
        j += 1
    if j >= len(text) or text[j + 1 : j + 2] != "(":
        return None
    k, parens = j + 2, 1
    while k < len(text):
        if text[k] == "(":
            parens += 1
        elif text[k] == ")":
            parens -= 1
            if parens == 0:
                break
        k += 1
    if k >= len(text):
        return None
    words = text[j + 2 : k].split()
    href = safe_href(words[0].removeprefix("<").removesuffix(">")) if words else None
    if href is None:
        return None  # shown as the literal text it was
    return link(href, render_inline(text[i + 1 : j], True)), k + 1


def _angle_link(text: str, i: int) -> tuple[str, int] | None:
    found = ANGLE_URL.match(text, i)
    href = safe_href(found.group(1)) if found else None
    if found is None or href is None:
        return None
    return link(href, escape(href)), found.end()


def _bare_link(text: str, i: int) -> tuple[str, int] | None:
    found = BARE_URL.match(text[i : i + 2048])
    if found is None:
        return None
    url = found.group(0)
    while TRAILING.search(url):  # sentence punctuation is not part of the URL
        if url.endswith(")") and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    href = safe_href(url)
    if href is None:
        return None
    return link(href, escape(url)), i + len(url)
