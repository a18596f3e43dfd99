// A thinking part: a <details> collapsed by default, above the text it led to.
// While the model thinks its summary says "Thinking…" and, if the reader has
// opened it, the text grows in place (the node is kept, so it stays open).

import { el } from "./inline.js";

/** A new, empty thinking section. */
export function buildThinking() {
  const details = el("details", "thinking");
  details.dataset.testid = "thinking";
  const summary = el("summary", "thinking-summary");
  summary.append(el("span", "thinking-label"));
  details.append(summary, el("div", "thinking-text"));
  return details;
}

/** Draw `part` into `details`; `live`: the model is still thinking it. */
export function drawThinking(details, part, live) {
  details.dataset.state = live ? "streaming" : "done";
  details.querySelector(".thinking-label").textContent = live ? "Thinking…" : part.redacted ? "Some thinking was redacted" : doneLabel(part);
  const body = details.querySelector(".thinking-text");
  const text = part.redacted ? "Some of Claude's thinking was encrypted for safety reasons and is not shown." : part.text;
  if (body.textContent !== text) body.textContent = text;
}

function doneLabel(part) {
  if (!part.startedAt || !part.endedAt) return "Show thinking";
  const seconds = Math.round((part.endedAt - part.startedAt) / 1000);
  return seconds < 2 ? "Thought for a moment" : `Thought for ${seconds} seconds`;
}
