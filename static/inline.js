// Inline Markdown (code spans, emphasis, links) into DOM nodes. Text only ever
// becomes a text node; links are made only for http(s) URLs, so "javascript:"
// and friends stay plain text.

const ESCAPABLE = /[\\`*_{}[\]()#+\-.!|~<>]/;
const BARE_URL = /^https?:\/\/[^\s<>"'`]+/i;
const WORD = /[\p{L}\p{N}]/u;

/** Create an element with an optional class and text. */
export function el(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** A link element for an http(s) URL (a new tab, no referrer), or null for anything else. */
export function safeLink(href) {
  let url;
  try { url = new URL(href); } catch { return null; }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  const a = el("a");
  a.href = url.href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

/** Append inline-rendered `text` to `parent` and return `parent`. */
export function renderInline(text, parent, inLink = false) {
  let buf = "";
  const flush = () => { if (buf) parent.append(document.createTextNode(buf)); buf = ""; };
  const put = (node) => { flush(); parent.append(node); };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    let hit = null;
    if (ch === "\\" && ESCAPABLE.test(text[i + 1] ?? "")) { buf += text[i + 1]; i += 2; continue; }
    if (ch === "\n") { put(el("br")); i += 1; continue; }
    if (ch === "`") hit = codeSpan(text, i);
    else if (ch === "*" || ch === "_" || ch === "~") hit = emphasis(text, i, inLink);
    else if (ch === "[" && !inLink) hit = link(text, i);
    else if (ch === "<" && !inLink) hit = angleLink(text, i);
    else if ((ch === "h" || ch === "H") && !inLink && !WORD.test(text[i - 1] ?? "")) hit = bareLink(text, i);
    if (hit) { put(hit.node); i = hit.end; continue; }
    buf += ch;
    i += 1;
  }
  flush();
  return parent;
}

function codeSpan(text, i) {
  let n = 0;
  while (text[i + n] === "`") n += 1;
  const fence = "`".repeat(n);
  let j = text.indexOf(fence, i + n);
  // The closing run must be exactly as long as the opening one.
  while (j !== -1 && text[j + n] === "`") {
    let k = j;
    while (text[k] === "`") k += 1;
    j = text.indexOf(fence, k);
  }
  if (j === -1) return { node: document.createTextNode(fence), end: i + n };
  let body = text.slice(i + n, j).replace(/\n/g, " ");
  if (/^ .* $/.test(body) && body.trim()) body = body.slice(1, -1);
  return { node: el("code", "", body), end: j + n };
}

function emphasis(text, i, inLink) {
  const ch = text[i];
  const double = text[i + 1] === ch;
  if (ch === "~" && !double) return null;
  const marker = double ? ch + ch : ch;
  const open = i + marker.length;
  if (!text[open] || /\s/.test(text[open])) return null;
  // "_" inside words (snake_case) is not emphasis.
  if (ch === "_" && WORD.test(text[i - 1] ?? "")) return null;
  let j = text.indexOf(marker, open + 1);
  while (j !== -1) {
    const closesHere = !/\s/.test(text[j - 1]) &&
      (double || text[j + 1] !== ch) &&
      !(ch === "_" && WORD.test(text[j + marker.length] ?? ""));
    if (closesHere) break;
    j = text.indexOf(marker, j + (double ? 2 : 1));
  }
  if (j === -1) return null;
  // "***both***": the outer pair is the strong one, the inner pair the em.
  while (double && text[j + 2] === ch) j += 1;
  const tag = ch === "~" ? "del" : double ? "strong" : "em";
  return { node: renderInline(text.slice(open, j), el(tag), inLink), end: j + marker.length };
}

function link(text, i) {
  // [label](url "optional title"): find the label's closing bracket first.
  let depth = 0;
  let j = i;
  for (; j < text.length; j += 1) {
    if (text[j] === "\\") { j += 1; continue; }
    if (text[j] === "[") depth += 1;
    else if (text[j] === "]" && --depth === 0) break;
  }
  if (j >= text.length || text[j + 1] !== "(") return null;
  let k = j + 2;
  let parens = 1;
  for (; k < text.length; k += 1) {
    if (text[k] === "(") parens += 1;
    else if (text[k] === ")" && --parens === 0) break;
  }
  if (k >= text.length) return null;
  const target = text.slice(j + 2, k).trim().split(/\s+/)[0].replace(/^<|>$/g, "");
  const a = safeLink(target);
  if (!a) return null; // shown as the literal text it was
  return { node: renderInline(text.slice(i + 1, j), a, true), end: k + 1 };
}

function angleLink(text, i) {
  const m = /^<(https?:\/\/[^\s<>]+)>/i.exec(text.slice(i));
  const a = m && safeLink(m[1]);
  if (!a) return null;
  a.textContent = m[1];
  return { node: a, end: i + m[0].length };
}

function bareLink(text, i) {
  const m = BARE_URL.exec(text.slice(i, i + 2048));
  if (!m) return null;
  let url = m[0];
  // Sentence punctuation after a URL is not part of it; a ")" is only when
  // the URL opened one itself (Wikipedia-style links).
  while (/[.,;:!?'")\]*_~]$/.test(url)) {
    if (url.endsWith(")") && count(url, "(") >= count(url, ")")) break;
    url = url.slice(0, -1);
  }
  const a = safeLink(url);
  if (!a) return null;
  a.textContent = url;
  return { node: a, end: i + url.length };
}

function count(s, ch) {
  return s.split(ch).length - 1;
}
