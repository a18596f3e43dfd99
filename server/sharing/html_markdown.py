"""Block Markdown to HTML for the share page: `static/markdown.js`'s rules, on the server.

The share page runs no script, so the page's renderer cannot draw it; this
port keeps its rules (fences, headings, rules, quotes, lists, tables,
paragraphs with visible line breaks) and escapes every piece of text through
`html_inline`, so markup in a message is shown, never parsed.
"""

from __future__ import annotations

import re
from html import escape

from server.sharing.html_inline import render_inline

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
ITEM = re.compile(r"^( {0,3})([-*+]|\d{1,9}[.)])[ \t]+(.*)$")
TABLE_RULE = re.compile(r"^ {0,3}\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?$")
CELL_SPLIT = re.compile(r"(?<!\\)\|")


def render_markdown(source: str) -> str:
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "".join(_blocks(lines))


def _blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif found := FENCE.match(line):
            i = _code_block(lines, i, found, out)
        elif found := HEADING.match(line):
            level = len(found.group(1))
            out.append(f"<h{level}>{render_inline(found.group(2) or '')}</h{level}>")
            i += 1
        elif RULE.match(line):
            out.append("<hr>")
            i += 1
        elif QUOTE.match(line):
            i = _quote(lines, i, out)
        elif ITEM.match(line):
            i = _list(lines, i, out)
        elif "|" in line and i + 1 < len(lines) and TABLE_RULE.match(lines[i + 1]):
            i = _table(lines, i, out)
        else:
            i = _paragraph(lines, i, out)
    return out


def _starts_block(line: str) -> bool:
    return any(p.match(line) for p in (FENCE, HEADING, RULE, QUOTE, ITEM))


def _paragraph(lines: list[str], start: int, out: list[str]) -> int:
    i, text = start, []
    while i < len(lines) and lines[i].strip() and (i == start or not _starts_block(lines[i])):
        text.append(lines[i].strip())
        i += 1
    out.append(f"<p>{render_inline(chr(10).join(text))}</p>")
    return i


def _code_block(lines: list[str], start: int, found: re.Match[str], out: list[str]) -> int:
    fence, lang = found.group(1), found.group(2)
    closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    i, body = start + 1, []
    while i < len(lines) and not closing.match(lines[i]):
        body.append(lines[i])
        i += 1
    language = escape(lang or "text")
    css = f' class="language-{escape(lang)}"' if lang else ""
    out.append(
        f'<div class="code-block"><div class="code-head"><span class="code-lang">{language}'
        f'</span></div><pre tabindex="0"><code{css}>{escape(chr(10).join(body))}</code></pre></div>'
    )
    return i + 1


def _quote(lines: list[str], start: int, out: list[str]) -> int:
    i, inner = start, []
    while i < len(lines):
        found = QUOTE.match(lines[i])
        if found:
            inner.append(found.group(1))
        elif lines[i].strip() and not _starts_block(lines[i]) and inner and inner[-1].strip():
            inner.append(lines[i])  # lazy continuation
        else:
            break
        i += 1
    out.append(f"<blockquote>{''.join(_blocks(inner))}</blockquote>")
    return i


def _spaces(line: str) -> int:
    return len(line) - len(line.lstrip())


def _list(lines: list[str], start: int, out: list[str]) -> int:
    first = ITEM.match(lines[start])
    assert first is not None
    ordered = first.group(2)[0].isdigit()
    items: list[list[str]] = []
    i, loose = start, False
    while i < len(lines):
        found = ITEM.match(lines[i])
        if not found or found.group(2)[0].isdigit() != ordered:
            break
        indent = len(found.group(1)) + len(found.group(2)) + 1
        body = [found.group(3)]
        i += 1
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                following = lines[i + 1] if i + 1 < len(lines) else ""
                if _spaces(following) >= min(indent, 4) and following.strip():
                    body.append("")
                    i, loose = i + 1, True
                    continue
                break
            if _spaces(line) >= min(indent, 4):
                body.append(line[min(_spaces(line), indent) :])
            elif not _starts_block(line) and body[-1].strip():
                body.append(line.strip())
            else:
                break
            i += 1
        items.append(body)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        same = ITEM.match(following)
        if (
            i < len(lines)
            and not lines[i].strip()
            and same
            and len(same.group(1)) == len(found.group(1))
            and same.group(2)[0].isdigit() == ordered
        ):
            i, loose = i + 1, True
    tag = "ol" if ordered else "ul"
    number = int(first.group(2)[:-1]) if ordered else 1
    opening = f'<{tag} start="{number}">' if ordered and number != 1 else f"<{tag}>"
    rendered = []
    for body in items:
        tight = not loose and not any(_starts_block(b) or not b.strip() for b in body[1:])
        inner = (
            render_inline("\n".join(b.strip() for b in body)) if tight else "".join(_blocks(body))
        )
        rendered.append(f"<li>{inner}</li>")
    out.append(opening + "".join(rendered) + f"</{tag}>")
    return i


def _cells(line: str) -> list[str]:
    stripped = re.sub(r"(?<!\\)\|$", "", line.strip().removeprefix("|"))
    return [cell.strip() for cell in CELL_SPLIT.split(stripped)]


def _alignment(cell: str) -> str:
    if cell.startswith(":") and cell.endswith(":"):
        return "center"
    return "right" if cell.endswith(":") else "left" if cell.startswith(":") else ""


def _table(lines: list[str], start: int, out: list[str]) -> int:
    head = _cells(lines[start])
    aligns = [_alignment(cell) for cell in _cells(lines[start + 1])]

    def row(texts: list[str], tag: str) -> str:
        cells = []
        for col in range(len(head)):
            align = aligns[col] if col < len(aligns) else ""
            attr = f' class="align-{align}"' if align else ""
            text = texts[col] if col < len(texts) else ""
            cells.append(f"<{tag}{attr}>{render_inline(text)}</{tag}>")
        return f"<tr>{''.join(cells)}</tr>"

    body, i = [], start + 2
    while i < len(lines) and "|" in lines[i] and lines[i].strip():
        body.append(row(_cells(lines[i]), "td"))
        i += 1
    out.append(
        f'<div class="table-scroll" tabindex="0"><table><thead>{row(head, "th")}</thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    return i
