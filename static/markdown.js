// Safe Markdown: text in, DOM nodes out. Every piece of user or model text
// reaches the page through textContent or a text node, never as HTML, so a
// reply that contains "<img onerror=…>" shows those characters and nothing runs.
// Partial input is normal (the answer is still streaming): an unclosed code
// fence is a code block up to the end, an unclosed "**" is literal text.

import { renderInline, el } from "./inline.js";

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
const TABLE_RULE = /^ {0,3}\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?$/;

/** Render Markdown source into a DocumentFragment. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  renderBlocks(String(source ?? "").replace(/\r\n?/g, "\n").split("\n"), fragment);
  return fragment;
}

function renderBlocks(lines, parent) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    let m;
    if ((m = FENCE.exec(line))) { i = codeBlock(lines, i, m, parent); continue; }
    if ((m = HEADING.exec(line))) {
      parent.append(renderInline(m[2] ?? "", el(`h${m[1].length}`)));
      i += 1; continue;
    }
    if (RULE.test(line)) { parent.append(el("hr")); i += 1; continue; }
    if (QUOTE.test(line)) { i = blockQuote(lines, i, parent); continue; }
    if (ITEM.test(line)) { i = list(lines, i, parent); continue; }
    if (line.includes("|") && TABLE_RULE.test(lines[i + 1] ?? "")) { i = table(lines, i, parent); continue; }
    i = paragraph(lines, i, parent);
  }
}

// A line that begins another block ends a paragraph without a blank line.
function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function paragraph(lines, start, parent) {
  let i = start;
  const text = [];
  while (i < lines.length && lines[i].trim() && (i === start || !startsBlock(lines[i]))) {
    text.push(lines[i].trim());
    i += 1;
  }
  // Chat text is written line by line: a single newline is a visible break.
  parent.append(renderInline(text.join("\n"), el("p")));
  return i;
}

function codeBlock(lines, start, match, parent) {
  const [, fence, lang] = match;
  const closing = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
  let i = start + 1;
  const body = [];
  while (i < lines.length && !closing.test(lines[i])) { body.push(lines[i]); i += 1; }
  parent.append(codeFigure(body.join("\n"), lang));
  return i + 1; // past the closing fence, or past the end while it streams
}

function codeFigure(text, lang) {
  const wrap = el("div", "code-block");
  const head = el("div", "code-head");
  head.append(el("span", "code-lang", lang || "text"), copyButton(text));
  const code = el("code", lang ? `language-${lang}` : "", text);
  const pre = el("pre");
  pre.tabIndex = 0; // long lines scroll sideways: the keyboard must reach it
  pre.append(code);
  wrap.append(head, pre);
  return wrap;
}

function copyButton(text) {
  const button = el("button", "copy", "Copy");
  button.type = "button";
  button.setAttribute("aria-label", "Copy code");
  button.addEventListener("click", async () => {
    button.textContent = (await copyText(text)) ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

// navigator.clipboard exists only in secure contexts; plain http on a LAN
// address is not one, so fall back to the older selection-based copy.
export async function copyText(text) {
  try {
    if (navigator.clipboard) { await navigator.clipboard.writeText(text); return true; }
  } catch { /* fall through */ }
  const area = el("textarea", "offscreen");
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok;
}

function blockQuote(lines, start, parent) {
  let i = start;
  const inner = [];
  while (i < lines.length) {
    const m = QUOTE.exec(lines[i]);
    if (m) inner.push(m[1]);
    else if (lines[i].trim() && !startsBlock(lines[i]) && inner.at(-1)?.trim()) inner.push(lines[i]); // lazy continuation
    else break;
    i += 1;
  }
  const quote = el("blockquote");
  renderBlocks(inner, quote);
  parent.append(quote);
  return i;
}

function list(lines, start, parent) {
  const first = ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const listEl = el(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) listEl.start = parseInt(first[2], 10);
  const items = [];
  let i = start;
  let loose = false;
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || /\d/.test(m[2]) !== ordered) break;
    const indent = m[1].length + m[2].length + 1;
    const body = [m[3]];
    i += 1;
    // Continuation: indented lines (nested lists, code), blank lines inside
    // the item, and lazy paragraph lines that do not start a new block.
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) {
        const next = lines[i + 1] ?? "";
        if (leadingSpaces(next) >= Math.min(indent, 4) && next.trim()) { body.push(""); i += 1; loose = true; continue; }
        break;
      }
      if (leadingSpaces(line) >= Math.min(indent, 4)) body.push(line.slice(Math.min(leadingSpaces(line), indent)));
      else if (!startsBlock(line) && body.at(-1)?.trim()) body.push(line.trim());
      else break;
      i += 1;
    }
    items.push(body);
    // A blank line between items of the same list keeps the list going.
    const next = lines[i + 1] ?? "";
    const same = ITEM.exec(next);
    if (!lines[i]?.trim() && i < lines.length && same && same[1].length === m[1].length && /\d/.test(same[2]) === ordered) { i += 1; loose = true; }
  }
  for (const body of items) {
    const li = el("li");
    if (!loose && body.length && !body.slice(1).some((l) => startsBlock(l) || !l.trim())) {
      renderInline(body.map((l) => l.trim()).join("\n"), li); // tight item: no <p>
    } else {
      renderBlocks(body, li);
    }
    listEl.append(li);
  }
  parent.append(listEl);
  return i;
}

function leadingSpaces(line) {
  return line.length - line.trimStart().length;
}

// A table row's cells; "\|" is a pipe inside a cell (inline rendering unescapes it).
function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim());
}

// ":--" left, "--:" right, ":-:" centre, from the rule under the header.
function alignment(cell) {
  if (cell.startsWith(":") && cell.endsWith(":")) return "center";
  return cell.endsWith(":") ? "right" : cell.startsWith(":") ? "left" : "";
}

function table(lines, start, parent) {
  const head = cells(lines[start]);
  const aligns = cells(lines[start + 1]).map(alignment);
  // Every row gets the header's number of cells, as in GitHub's tables.
  const row = (texts, tag) => {
    const tr = el("tr");
    head.forEach((_, col) => {
      const cell = renderInline(texts[col] ?? "", el(tag));
      if (aligns[col]) cell.style.textAlign = aligns[col];
      tr.append(cell);
    });
    return tr;
  };
  const thead = el("thead");
  thead.append(row(head, "th"));
  const tbody = el("tbody");
  let i = start + 2;
  while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
    tbody.append(row(cells(lines[i]), "td"));
    i += 1;
  }
  const tableEl = el("table");
  tableEl.append(thead, tbody);
  const scroller = el("div", "table-scroll");
  scroller.tabIndex = 0; // a wide table scrolls sideways: the keyboard must reach it
  scroller.append(tableEl);
  parent.append(scroller);
  return i;
}
