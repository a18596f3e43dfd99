// The controls under a message, for the tree a conversation is: Edit on a
// question (a new sibling question, answered anew); Regenerate, Copy and a
// rating on an answer; "‹ 2/3 ›" wherever the parent has other children.
// Drawing only: what a control does is the handler's (chat.js).

import { el } from "./inline.js";
import { copyText } from "./markdown.js";

const COPIED_MS = 1500;

function iconButton(className, label, text) {
  const button = el("button", `tool ${className}`, text);
  button.type = "button";
  button.setAttribute("aria-label", label);
  button.title = label;
  return button;
}

/**
 * The tools of `node` from `meta` ({id, parentId, siblings, feedback}) and its
 * status; handlers: onEdit(node), onRegenerate(node), onSwitch(node, id),
 * onRate(node, rating | null, comment).
 */
export function drawTools(tools, node, meta, handlers) {
  tools.replaceChildren();
  const streaming = node.dataset.status === "streaming" || node.dataset.status === "pending";
  const siblings = meta.siblings;
  if (siblings && siblings.count > 1) tools.append(siblingNav(node, siblings, handlers));
  if (streaming || !meta.id) { tools.hidden = !tools.childElementCount; return; }
  if (node.dataset.role === "user") {
    const edit = iconButton("edit", "Edit this message", "✎");
    edit.addEventListener("click", () => handlers.onEdit(node));
    tools.append(edit);
  } else {
    const again = iconButton("regenerate", "Regenerate this answer", "↻");
    again.addEventListener("click", () => handlers.onRegenerate(node));
    const copy = iconButton("copy-answer", "Copy the answer", "Copy");
    copy.addEventListener("click", async () => {
      copy.textContent = (await copyText(meta.content ?? "")) ? "Copied" : "Copy failed";
      setTimeout(() => { copy.textContent = "Copy"; }, COPIED_MS);
    });
    tools.append(again, copy, ...ratingButtons(node, meta, handlers));
  }
  tools.hidden = false;
}

function siblingNav(node, { index, count, ids }, handlers) {
  const nav = el("span", "siblings");
  nav.setAttribute("role", "group");
  nav.setAttribute("aria-label", "Versions");
  const previous = iconButton("sibling-previous", "Previous version", "‹");
  const next = iconButton("sibling-next", "Next version", "›");
  previous.disabled = index <= 0;
  next.disabled = index >= count - 1;
  previous.addEventListener("click", () => handlers.onSwitch(node, ids[index - 1]));
  next.addEventListener("click", () => handlers.onSwitch(node, ids[index + 1]));
  nav.append(previous, el("span", "sibling-count", `${index + 1}/${count}`), next);
  return nav;
}

// A thumb drawn as SVG: an emoji needs a colour font that many systems lack.
const THUMB = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06"
  + "L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05"
  + "c.09-.23.14-.47.14-.73v-2z";

function thumb(down) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add("thumb");
  if (down) svg.setAttribute("transform", "rotate(180)");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", THUMB);
  svg.append(path);
  return svg;
}

function ratingButtons(node, meta, handlers) {
  const current = meta.feedback?.rating ?? null;
  return [["up", "Good answer"], ["down", "Bad answer"]].map(([rating, label]) => {
    const button = iconButton(`rate rate-${rating}`, label, "");
    button.append(thumb(rating === "down"));
    button.setAttribute("aria-pressed", String(current === rating));
    button.addEventListener("click", () => {
      if (current === rating) handlers.onRate(node, null, null); // pressed again: cleared
      else if (rating === "down") askReason(node, (comment) => handlers.onRate(node, "down", comment));
      else handlers.onRate(node, "up", null);
    });
    return button;
  });
}

// A 👎 asks why, in a line under the answer; the reason is optional.
function askReason(node, send) {
  node.querySelector(".reason-form")?.remove();
  const form = el("form", "reason-form");
  const input = el("input", "reason-input");
  input.type = "text";
  input.maxLength = 2000;
  input.placeholder = "What was wrong? (optional)";
  input.setAttribute("aria-label", "What was wrong with this answer (optional)");
  const submit = el("button", "primary", "Send");
  submit.type = "submit";
  const skip = el("button", "", "Skip");
  skip.type = "button";
  form.append(input, submit, skip);
  const done = (comment) => { form.remove(); send(comment); };
  form.addEventListener("submit", (e) => { e.preventDefault(); done(input.value.trim() || null); });
  skip.addEventListener("click", () => done(null));
  input.addEventListener("keydown", (e) => { if (e.key === "Escape") form.remove(); });
  node.append(form);
  input.focus();
}

/** Edit a question in place: a textarea, "Save and send" and "Cancel"; Esc cancels. */
export function openEditor(node, text, { onSave, onCancel }) {
  const body = node.querySelector(".msg-body");
  const form = el("form", "edit-form");
  const area = el("textarea", "edit-input");
  area.value = text;
  area.rows = Math.min(10, Math.max(2, text.split("\n").length));
  area.setAttribute("aria-label", "Edit your message");
  const save = el("button", "primary", "Save and send");
  save.type = "submit";
  const cancel = el("button", "", "Cancel");
  cancel.type = "button";
  const buttons = el("div", "edit-buttons");
  buttons.append(cancel, save);
  form.append(area, buttons);
  const close = () => { form.remove(); body.hidden = false; node.classList.remove("editing"); };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!area.value.trim()) { area.focus(); return; }
    close();
    onSave(area.value.trimEnd());
  });
  cancel.addEventListener("click", () => { close(); onCancel?.(); });
  area.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); close(); onCancel?.(); }
  });
  body.hidden = true;
  node.classList.add("editing");
  body.after(form);
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}
