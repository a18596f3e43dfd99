// An answer's body from its parts (see parts.js): Markdown text with its
// numbered source links, thinking sections and tool cards, in order. Drawn
// again on every streamed frame, so nodes are kept where the part is the same
// kind: an opened thinking section or tool card stays open while it grows.

import { renderMarkdown } from "./markdown.js";
import { el, safeLink } from "./inline.js";
import { buildThinking, drawThinking } from "./thinking.js";
import { buildToolCard, drawToolCard } from "./tool-card.js";

const BUILD = { text: () => el("div", "answer-text"), thinking: buildThinking, tool: buildToolCard };
const CITE_OPEN = "\uE000"; // private-use marks the Markdown passes through as text
const CITE_CLOSE = "\uE001";
const CITE_MARK = /\uE000(\d+)\uE001/g;
const drawn = new WeakMap(); // text node -> the text and citations it shows

/** Draw `parts` into `body`; `live`: the answer is still streaming. */
export function drawAnswer(body, parts, live) {
  const sources = numberSources(parts);
  parts.forEach((part, index) => {
    let node = body.children[index];
    if (node?.dataset.kind !== part.kind) {
      const fresh = BUILD[part.kind]();
      fresh.dataset.kind = part.kind;
      if (node) node.replaceWith(fresh); else body.append(fresh);
      node = fresh;
    }
    const last = index === parts.length - 1;
    if (part.kind === "text") drawText(node, part, sources);
    else if (part.kind === "thinking") drawThinking(node, part, live && last && !part.redacted);
    else drawToolCard(node, part, live);
  });
  while (body.children.length > parts.length) body.lastElementChild.remove();
}

function drawText(node, part, sources) {
  const key = `${part.citations.map((c) => c.at).join(",")}:${part.text}`; // a source that moved redraws
  if (drawn.get(node) === key) return;
  drawn.set(node, key);
  if (!part.citations.length) { node.replaceChildren(renderMarkdown(part.text)); return; }
  // Each cited passage gets its source numbers right after it.
  let text = "";
  let from = 0;
  for (const c of part.citations) {
    text += part.text.slice(from, c.at).replace(/[\uE000\uE001]/g, "") + `${CITE_OPEN}${sources.get(c.url)}${CITE_CLOSE}`;
    from = c.at;
  }
  text += part.text.slice(from);
  node.replaceChildren(renderMarkdown(text));
  placeCitations(node, part, sources);
}

// Source numbers are per answer, in order of first citation.
function numberSources(parts) {
  const numbers = new Map();
  for (const part of parts) {
    for (const c of part.citations ?? []) if (!numbers.has(c.url)) numbers.set(c.url, numbers.size + 1);
  }
  return numbers;
}

function placeCitations(node, part, sources) {
  const titles = new Map(part.citations.map((c) => [sources.get(c.url), c]));
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
  const marked = [];
  while (walker.nextNode()) if (walker.currentNode.data.includes(CITE_OPEN)) marked.push(walker.currentNode);
  for (const textNode of marked) {
    const pieces = [];
    let from = 0;
    for (const m of textNode.data.matchAll(CITE_MARK)) {
      pieces.push(document.createTextNode(textNode.data.slice(from, m.index)));
      const n = Number(m[1]);
      pieces.push(citeLink(n, titles.get(n)));
      from = m.index + m[0].length;
    }
    pieces.push(document.createTextNode(textNode.data.slice(from)));
    textNode.replaceWith(...pieces.filter((p) => p.nodeType !== Node.TEXT_NODE || p.data));
  }
}

function citeLink(n, citation) {
  const sup = el("sup", "cite");
  const link = safeLink(citation.url);
  if (!link) { sup.textContent = `[${n}]`; sup.title = citation?.title ?? ""; return sup; }
  link.textContent = `[${n}]`;
  link.title = citation.title;
  link.setAttribute("aria-label", `Source ${n}: ${citation.title}`);
  sup.append(link);
  return sup;
}
