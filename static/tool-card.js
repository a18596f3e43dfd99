// A tool call in the answer's flow: a compact card (status, tool name, a short
// summary of its input) that opens to the input JSON and the result's preview.
// A server tool (web search) says what it searched and lists its sources as
// links, http(s) only.

import { el, safeLink } from "./inline.js";

const STATUS = { running: "Running…", ok: "Done", error: "Failed", timeout: "Timed out", cancelled: "Cancelled" };
const SUMMARY_CHARS = 60;

/** A new, empty card. */
export function buildToolCard() {
  const card = el("div", "tool-card");
  card.dataset.testid = "tool-call";
  const details = el("details", "tool-details");
  const summary = el("summary", "tool-summary");
  summary.append(el("span", "tool-icon"), el("span", "tool-name"), el("span", "tool-input-summary"), el("span", "tool-status"));
  const input = el("pre", "tool-input");
  const result = el("pre", "tool-result");
  details.append(summary, el("p", "tool-heading", "Input"), input, el("p", "tool-heading tool-result-heading", "Result"), result);
  card.append(details, el("ul", "sources"));
  return card;
}

/** Draw `part`; `live`: the answer is still streaming (a server tool may still run). */
export function drawToolCard(card, part, live) {
  const status = part.server && part.status === "running" && !live ? "ok" : part.status;
  card.dataset.status = status;
  card.dataset.name = part.name;
  card.classList.toggle("server-tool", part.server);
  const search = part.server && part.name === "web_search";
  set(card, ".tool-name", search ? webSearchLabel(part, status) : part.name);
  set(card, ".tool-input-summary", search ? "" : summarize(part.input));
  set(card, ".tool-status", part.searchError ? `Failed (${part.searchError})` : STATUS[status] ?? status);
  set(card, ".tool-input", JSON.stringify(part.input ?? {}, null, 2));
  const hasResult = Boolean(part.preview);
  set(card, ".tool-result", part.preview || "");
  card.querySelector(".tool-result").hidden = !hasResult;
  card.querySelector(".tool-result-heading").hidden = !hasResult;
  drawSources(card.querySelector(".sources"), part.sources ?? []);
}

function webSearchLabel(part, status) {
  const query = String(part.input?.query ?? "");
  return status === "running" ? `Searching the web for “${query}”…` : `Searched the web for “${query}”`;
}

// {"location": "Paris"} → location: Paris; long values are cut.
function summarize(input) {
  const text = Object.entries(input ?? {})
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function drawSources(list, sources) {
  list.hidden = !sources.length;
  if (list.childElementCount === sources.length) return; // sources arrive whole, once
  list.replaceChildren(...sources.map((source) => {
    const item = el("li");
    const link = safeLink(source.url);
    if (!link) { item.textContent = source.title; return item; }
    link.className = "source";
    link.append(el("span", "source-title", source.title), el("span", "source-domain", link.hostname));
    item.append(link);
    return item;
  }));
}

function set(card, selector, text) {
  const node = card.querySelector(selector);
  if (node.textContent !== text) node.textContent = text;
}
