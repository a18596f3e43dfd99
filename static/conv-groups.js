// The sidebar's rows grouped: "Pinned" first, then one group per project, in
// order of their latest activity (as the list arrives), conversations with no
// project in a group of their own. With a single group there is no heading:
// a user who files nothing sees the plain list.

import { el } from "./inline.js";

const PINNED = "\u0000pinned"; // group keys: cannot collide with a project's name
const NO_PROJECT = "\u0000none";

export function groupOf(conv) {
  if (conv.pinned) return PINNED;
  return conv.project ? `p:${conv.project}` : NO_PROJECT;
}

function headingOf(key, conv) {
  if (key === PINNED) return "Pinned";
  return key === NO_PROJECT ? "No project" : conv.project;
}

export class Groups {
  #root; // the <ul> of groups
  #groups = new Map(); // key -> {li, list}

  constructor(root) {
    this.#root = root;
  }

  clear() {
    this.#groups.clear();
    this.#root.replaceChildren();
    this.#label();
  }

  /**
   * Put `row` (conversation `conv`) in its group: first when `toTop` (the group
   * moves up too), else in last-activity order; a row already in its group stays.
   */
  place(row, conv, { toTop = false } = {}) {
    const key = groupOf(conv);
    const fresh = !this.#groups.has(key);
    const group = this.#group(key, conv);
    const from = row.parentElement;
    if (toTop) {
      group.list.prepend(row);
      this.#raise(key, group);
    } else if (from !== group.list) {
      const later = [...group.list.children].find((other) => (other.dataset.updatedAt ?? "") < (conv.updated_at ?? ""));
      group.list.insertBefore(row, later ?? null);
      if (fresh && key !== PINNED && from) this.#raise(key, group); // moved into a new group: show it
    }
    if (from && from !== group.list) this.#prune(from);
    row.dataset.updatedAt = conv.updated_at ?? "";
    this.#label();
  }

  remove(row) {
    const from = row.parentElement;
    row.remove();
    if (from) this.#prune(from);
    this.#label();
  }

  #group(key, conv) {
    let group = this.#groups.get(key);
    if (group) return group;
    const li = el("li", "conv-group");
    li.dataset.group = key === PINNED ? "pinned" : key === NO_PROJECT ? "" : conv.project;
    const heading = el("h3", "conv-group-title", headingOf(key, conv));
    heading.id = `group-${Math.random().toString(36).slice(2)}`;
    const list = el("ul", "conv-list");
    list.setAttribute("aria-labelledby", heading.id);
    li.append(heading, list);
    group = { li, list };
    this.#groups.set(key, group);
    if (key === PINNED) this.#root.prepend(li);
    else this.#root.append(li);
    return group;
  }

  // Just below "Pinned" (or first): the group with the latest activity.
  #raise(key, group) {
    if (key === PINNED) return;
    const pinned = this.#groups.get(PINNED)?.li;
    if (pinned) pinned.after(group.li);
    else this.#root.prepend(group.li);
  }

  #prune(list) {
    if (list.children.length) return;
    for (const [key, group] of this.#groups) {
      if (group.list === list) { group.li.remove(); this.#groups.delete(key); }
    }
  }

  #label() {
    this.#root.dataset.groups = String(this.#groups.size);
  }
}
