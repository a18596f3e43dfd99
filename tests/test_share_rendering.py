"""The share page's Markdown (the page's rules, as escaped HTML) and the Markdown export's
citations, on stored-message shapes: what a reader of either sees."""

from __future__ import annotations

from datetime import UTC, datetime

from server.sharing.html_markdown import render_markdown
from server.sharing.markdown_export import conversation_markdown

CITED = {
    "type": "text",
    "text": "Error correction reached a milestone.",
    "citations": [
        {
            "type": "web_search_result_location",
            "url": "https://example.com/quantum",
            "title": "Quantum news",
            "cited_text": "Error correction reached a new milestone.",
            "encrypted_index": "Eo8B",
        }
    ],
}


def test_the_share_page_renders_the_pages_markdown_and_nothing_that_runs() -> None:
    html = render_markdown(
        "# Title <b>x</b>\n\n| a | b |\n|:-|-:|\n| 1 | `2` |\n\n"
        "```js\n</code><script>x</script>\n```\n"
        "- one\n- **two**\n\n[site](https://example.com) [bad](javascript:alert(1)) "
        "<https://a.example/x> snake_case_name"
    )
    assert "<h1>Title &lt;b&gt;x&lt;/b&gt;</h1>" in html
    assert '<th class="align-left">a</th><th class="align-right">b</th>' in html
    assert '<td class="align-right"><code>2</code></td>' in html
    assert '<code class="language-js">&lt;/code&gt;&lt;script&gt;x&lt;/script&gt;</code>' in html
    assert "<ul><li>one</li><li><strong>two</strong></li></ul>" in html
    assert (
        '<a href="https://example.com" target="_blank" rel="noopener noreferrer">site</a>' in html
    )
    assert "[bad](javascript:alert(1))" in html and 'href="javascript' not in html
    assert ">https://a.example/x</a>" in html and "snake_case_name" in html
    assert "<script" not in html


def test_the_markdown_export_lists_citations_as_footnotes() -> None:
    made = datetime(2025, 6, 1, 12, tzinfo=UTC)
    conversation = {"title": "Quantum", "model": "claude-x", "created_at": made}
    branch = [
        {"role": "user", "content": "News?", "blocks": None, "status": "complete"},
        {"role": "assistant", "content": "", "blocks": [CITED], "status": "complete"},
    ]
    text = conversation_markdown(conversation, branch)
    assert text.startswith("# Quantum\n\n*claude-x · 2025-06-01 12:00 UTC*")
    assert "Error correction reached a milestone.[^1]" in text
    assert text.endswith(
        "[^1]: [Quantum news](https://example.com/quantum): "
        '"Error correction reached a new milestone."\n'
    )
