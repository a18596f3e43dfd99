// The sidebar's search box: your own messages containing the words typed
// (GET /api/search), a moment after typing stops. Hits stand in for the
// conversations list until the box is cleared (Escape clears it); each opens
// its conversation. The match is marked with <mark> around text nodes.

import { el } from "./inline.js";
import { describeError } from "./errors.js";

const DEBOUNCE_MS = 250;

export class Search {
  #api;
  #parts;
  #onOpen;
  #timer = 0;
  #request = null; // AbortController of the search in flight

  /** parts: input, results (a list), status, conversations (hidden while searching). onOpen(): a hit was opened. */
  constructor({ api, parts, onOpen }) {
    this.#api = api;
    this.#parts = parts;
    this.#onOpen = onOpen;
    parts.input.addEventListener("input", () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#run(), DEBOUNCE_MS);
    });
    parts.input.addEventListener("keydown", (e) => {
      if (e.key !== "Escape" || !parts.input.value) return;
      e.stopPropagation(); // clear the search, not close the drawer
      this.clear();
    });
  }

  /** Empty the box and show the conversations again. */
  clear() {
    clearTimeout(this.#timer);
    this.#parts.input.value = "";
    this.#run();
  }

  async #run() {
    const query = this.#parts.input.value.trim();
    this.#request?.abort();
    this.#request = null;
    const searching = Boolean(query);
    this.#parts.conversations.hidden = searching;
    this.#parts.results.hidden = !searching;
    if (!searching) { this.#status(""); this.#parts.results.replaceChildren(); return; }
    const request = (this.#request = new AbortController());
    this.#status("Searching…");
    try {
      const { items } = await this.#api.search(query.slice(0, 200), request.signal);
      if (request !== this.#request) return;
      this.#parts.results.replaceChildren(...items.map((hit) => this.#hit(hit, query)));
      this.#status(items.length ? "" : "No messages match.");
    } catch (err) {
      if (request === this.#request && err.name !== "AbortError") this.#status(describeError(err));
    }
  }

  #hit(hit, query) {
    const item = el("li", "search-hit");
    item.dataset.testid = "search-hit";
    const link = el("a", "search-link");
    link.href = `#/c/${encodeURIComponent(hit.conversation_id)}`;
    link.addEventListener("click", () => this.#onOpen());
    const snippet = el("span", "search-snippet");
    link.append(el("span", "search-title", hit.conversation_title?.trim() || "New chat"), marked(snippet, hit.snippet ?? "", query));
    item.append(link);
    return item;
  }

  #status(text) {
    this.#parts.status.textContent = text;
    this.#parts.status.hidden = !text;
  }
}

/** Append `text` to `parent` with the start of each word that begins with a word of
 * `query` (case aside: what the service matched, docs/protocol.md) in a <mark>. */
export function marked(parent, text, query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
  let from = 0;
  if (words.length) {
    // Longest first, so that "bread" is marked whole where "br" is asked too.
    const alternatives = words.sort((a, b) => b.length - a.length).join("|");
    const starts = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives})`, "giu");
    for (const found of text.matchAll(starts)) {
      parent.append(text.slice(from, found.index), el("mark", "", found[0]));
      from = found.index + found[0].length;
    }
  }
  parent.append(text.slice(from));
  return parent;
}
