// An answer as the parts a reader sees, in the order the model produced them:
// text, thinking, tool calls (each with its result). Built two ways that give
// the same shape: folded from a live turn's events, or read from a stored
// message's `blocks`. Plain data (saved with a running turn in sessionStorage).
//
//   {kind: "text", text, citations: [{url, title, at}]}   at: offset in text after the cited part
//   {kind: "thinking", text, redacted, startedAt?, endedAt?}
//   {kind: "tool", id, name, input, server, status, preview, sources?, searchError?}

/** Append streamed text or thinking: to the last part when it is of that kind. */
export function addStreamed(parts, kind, text) {
  if (!text) return;
  const last = parts.at(-1);
  if (last?.kind === kind && !last.redacted) {
    last.text += text;
    if (kind === "text") for (const c of last.citations) if (c.open) c.at = last.text.length;
    return;
  }
  finishThinking(parts);
  const part = kind === "thinking" ? { kind, text, redacted: false, startedAt: Date.now() } : { kind, text, citations: [] };
  parts.push(part);
}

/**
 * A `turn.citation`: a source for the text that streams after it. Deltas do not
 * say where a block ends, so the source stays at the end of the text so far
 * (open) until a citation of another block or another part comes; the stored
 * blocks of `turn.done` then put each where it belongs.
 */
export function addCitation(parts, frame) {
  const source = sourceOf(frame.citation);
  if (!source) return;
  let last = parts.at(-1);
  if (last?.kind !== "text") {
    finishThinking(parts);
    last = { kind: "text", text: "", citations: [] };
    parts.push(last);
  }
  for (const c of last.citations) if (c.open && c.block !== frame.block) c.open = false;
  last.citations.push({ ...source, at: last.text.length, block: frame.block, open: true });
}

/** A `turn.tool_call`: a new card, running. */
export function addToolCall(parts, frame) {
  finishThinking(parts);
  parts.push({
    kind: "tool", id: frame.id, name: frame.name, input: frame.input ?? {},
    server: Boolean(frame.server), status: "running", preview: "",
  });
}

/** A `turn.tool_result`: the card of that call gets its status and preview. */
export function addToolResult(parts, frame) {
  const card = parts.find((p) => p.kind === "tool" && p.id === frame.id);
  if (card) Object.assign(card, { status: frame.status, preview: frame.preview ?? "" });
}

/** The turn ended: a thinking part still open is done now. */
export function finishThinking(parts) {
  const last = parts.at(-1);
  if (last?.kind === "thinking" && last.startedAt && !last.endedAt) last.endedAt = Date.now();
}

/**
 * A stored message's blocks as parts; `content` (the plain text) stands in
 * when there are no blocks (a user's message, an answer from before blocks).
 */
export function partsFromBlocks(blocks, content = "") {
  if (!Array.isArray(blocks)) return content ? [{ kind: "text", text: content, citations: [] }] : [];
  const parts = [];
  const tools = new Map();
  for (const block of blocks) {
    switch (block?.type) {
      case "text": addCitedText(parts, block); break;
      case "thinking": if (block.thinking) parts.push({ kind: "thinking", text: block.thinking, redacted: false }); break;
      case "redacted_thinking": parts.push({ kind: "thinking", text: "", redacted: true }); break;
      case "tool_use":
      case "server_tool_use": {
        const card = {
          kind: "tool", id: block.id, name: block.name, input: block.input ?? {},
          server: block.type === "server_tool_use", status: block.type === "server_tool_use" ? "ok" : "running", preview: "",
        };
        tools.set(block.id, card);
        parts.push(card);
        break;
      }
      case "tool_result": {
        const card = tools.get(block.tool_use_id);
        if (card) Object.assign(card, { status: block.status ?? (block.is_error ? "error" : "ok"), preview: resultText(block.content) });
        break;
      }
      case "web_search_tool_result": {
        const card = tools.get(block.tool_use_id);
        if (card) addSearchResult(card, block.content);
        break;
      }
      default: break; // a block type added later: kept by the service, not shown
    }
  }
  return parts;
}

/** The answer's plain text (what Retry and Copy of the whole answer would use). */
export function textOf(parts) {
  return parts.filter((p) => p.kind === "text").map((p) => p.text).join("");
}

// Consecutive text blocks read as one text (a cited sentence is a block of its
// own); each block's citations are anchored at the end of its text.
function addCitedText(parts, block) {
  const text = block.text ?? "";
  let last = parts.at(-1);
  if (last?.kind !== "text") {
    if (!text) return;
    last = { kind: "text", text: "", citations: [] };
    parts.push(last);
  }
  last.text += text;
  for (const c of block.citations ?? []) {
    const source = sourceOf(c);
    if (source) last.citations.push({ ...source, at: last.text.length });
  }
}

// A web source ({url, title}), or a place in an attached document; null if neither.
function sourceOf(c) {
  if (c?.url) return { url: c.url, title: c.title || c.url };
  if (c?.document_title !== undefined || c?.document_index !== undefined) return documentSource(c);
  return null;
}

// A citation into an attached PDF or text: no link, its name and page as the title.
function documentSource(c) {
  const name = c.document_title || `Document ${(c.document_index ?? 0) + 1}`;
  const pages = c.start_page_number === undefined ? ""
    : c.end_page_number > c.start_page_number + 1 ? `, pp. ${c.start_page_number}–${c.end_page_number - 1}`
      : `, p. ${c.start_page_number}`;
  return { url: `document:${c.document_index ?? 0}:${c.start_page_number ?? c.start_char_index ?? 0}`, title: `${name}${pages}` };
}

function addSearchResult(card, content) {
  if (Array.isArray(content)) {
    card.sources = content.filter((r) => r?.type === "web_search_result" && r.url).map((r) => ({ url: r.url, title: r.title || r.url }));
  } else {
    card.status = "error";
    card.searchError = content?.error_code || "unavailable";
  }
}

function resultText(content) {
  const text = typeof content === "string" ? content
    : Array.isArray(content) ? content.map((b) => b?.text ?? "").join(" ") : "";
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}
