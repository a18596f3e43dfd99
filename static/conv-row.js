// One row of the conversations list: a link (title, last activity) and the
// row's actions. Rename, Archive and Delete appear on hover or keyboard focus;
// on a touch screen they sit behind a "⋯" button (or a long press) as a small menu.

import { el } from "./inline.js";
import { showTime } from "./when.js";

const ACTIONS = ["Rename", "Archive", "Delete"];
let openRow = null; // the row whose menu is open: one at a time

// A tap anywhere else closes the menu.
document.addEventListener("pointerdown", (e) => { if (openRow && !openRow.contains(e.target)) setMenu(openRow, false); });

/** A row for conversation `id`; `on` holds open(), rename(), archive(), delete(). */
export function buildRow(id, on) {
  const li = el("li", "conv");
  li.dataset.testid = "conversation";
  li.dataset.id = id;
  const link = el("a", "conv-link");
  link.href = `#/c/${encodeURIComponent(id)}`;
  link.append(el("span", "conv-title"), el("time", "conv-time"));
  link.addEventListener("click", () => on.open());
  const more = el("button", "conv-more");
  more.type = "button";
  more.setAttribute("aria-expanded", "false");
  more.append(el("span", "visually-hidden", "More actions"));
  more.addEventListener("click", () => setMenu(li, !li.classList.contains("menu-open")));
  const actions = el("div", "conv-actions");
  for (const label of ACTIONS) {
    // An icon (drawn by CSS) with the word for screen readers, tests and the touch menu.
    const button = el("button", `conv-${label.toLowerCase()}`);
    button.type = "button";
    button.title = label;
    button.append(el("span", "visually-hidden", label));
    button.addEventListener("click", () => { setMenu(li, false); on[label.toLowerCase()](); });
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

/** Draw `conv` into its row: title, last activity, whether it is the open one. */
export function drawRow(li, { title, updatedAt, current }) {
  const link = li.querySelector(".conv-link");
  if (!link) return; // being renamed: the link is back when that ends
  link.querySelector(".conv-title").textContent = title;
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
