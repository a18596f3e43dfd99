// One row of the conversations list: a link (title, last activity, tags) and
// the row's actions. Rename, Pin, Tags, Move to project, Archive (Unarchive in
// the Archived view) and Delete appear on hover or keyboard focus; on a touch
// screen they sit behind a "⋯" button (or a long press) as a small menu.

import { el } from "./inline.js";
import { showTime } from "./when.js";

// [what `on` calls, the label]
const ACTIONS = [
  ["rename", "Rename"], ["pin", "Pin"], ["tags", "Tags"], ["move", "Move to project"],
  ["archive", "Archive"], ["delete", "Delete"],
];
let openRow = null; // the row whose menu is open: one at a time

// A tap anywhere else closes the menu.
document.addEventListener("pointerdown", (e) => { if (openRow && !openRow.contains(e.target)) setMenu(openRow, false); });

/**
 * A row for conversation `id`; `on` holds open() and a function per action;
 * `archived`: the row is in the Archived view (its Archive unarchives).
 */
export function buildRow(id, on, { archived = false } = {}) {
  const li = el("li", "conv");
  li.dataset.testid = "conversation";
  li.dataset.id = id;
  const link = el("a", "conv-link");
  link.href = `#/c/${encodeURIComponent(id)}`;
  const meta = el("span", "conv-meta");
  meta.append(el("time", "conv-time"), el("span", "conv-tag-list"));
  link.append(el("span", "conv-title"), meta);
  link.addEventListener("click", () => on.open());
  const more = el("button", "conv-more");
  more.type = "button";
  more.setAttribute("aria-expanded", "false");
  more.append(el("span", "visually-hidden", "More actions"));
  more.addEventListener("click", () => setMenu(li, !li.classList.contains("menu-open")));
  const actions = el("div", "conv-actions");
  for (const [action, word] of ACTIONS) {
    // An icon (drawn by CSS) with the word for screen readers, tests and the touch menu.
    const button = el("button", `conv-${action}`);
    button.type = "button";
    label(button, action === "archive" && archived ? "Unarchive" : word);
    button.addEventListener("click", () => { setMenu(li, false); on[action](); });
    actions.append(button);
  }
  // A long press on a touch screen opens the menu instead of the browser's own.
  li.addEventListener("contextmenu", (e) => {
    if (!matchMedia("(hover: none)").matches) return;
    e.preventDefault();
    setMenu(li, true);
  });
  li.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || !li.classList.contains("menu-open")) return;
    e.stopPropagation(); // close the menu, not the drawer
    setMenu(li, false);
    more.focus();
  });
  li.append(link, more, actions);
  return li;
}

function label(button, word) {
  button.title = word;
  button.replaceChildren(el("span", "visually-hidden", word));
}

/** Draw `conv` into its row: title, last activity, tags, pinned, whether it is the open one. */
export function drawRow(li, { title, updatedAt, current, pinned, tags }) {
  const pin = li.querySelector(".conv-pin");
  label(pin, pinned ? "Unpin" : "Pin");
  pin.classList.toggle("on", pinned);
  const link = li.querySelector(".conv-link");
  if (!link) return; // being renamed: the link is back when that ends
  link.querySelector(".conv-title").textContent = title;
  link.querySelector(".conv-tag-list").textContent = tags.map((t) => `#${t}`).join(" ");
  showTime(link.querySelector(".conv-time"), updatedAt);
  li.classList.toggle("current", current);
  if (current) link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");
}

function setMenu(li, open) {
  if (open && openRow && openRow !== li) setMenu(openRow, false);
  li.classList.toggle("menu-open", open);
  li.querySelector(".conv-more").setAttribute("aria-expanded", String(open));
  openRow = open ? li : openRow === li ? null : openRow;
  if (open) li.querySelector(".conv-actions button").focus();
}
