// The conversations sidebar: pinned first, then newest first, grouped by
// project, a page of 20 at a time as the reader scrolls, with rename, pin,
// tags, move to project, archive (or unarchive) and delete; filtered by
// project or tag, or showing the archived ones. ↑/↓ move through the rows,
// Enter opens one. On a narrow screen it is a slide-over (a drawer) opened by
// the "Conversations" button.

import { buildRow, drawRow } from "./conv-row.js";
import { Groups } from "./conv-groups.js";
import { el } from "./inline.js";
import { describeError } from "./errors.js";
import { Filters, askToFile } from "./organise.js";

const TIMES_EVERY_MS = 60_000; // "5 min ago" moves on

const UNTITLED = "New chat";

export class Sidebar {
  #api;
  #parts;
  #onGone;
  #items = new Map(); // id -> {conv, li}
  #leaving = new Set(); // ids being archived or deleted: no longer to be asked about
  #deleted = new Set(); // deleted on another device: a late push of a change is stale
  #cursor = null;
  #hasMore = false;
  #loading = false;
  #observer;
  #currentId = null;
  #generation = 0; // bumped by reload: answers for an older list are dropped
  #groups;
  #filters;

  /**
   * parts: root, list, sentinel, status, toggle, close, backdrop, dialog,
   * fileDialog, filters (the parts of `Filters`).
   * onGone(id): the open conversation was archived or deleted here.
   */
  constructor({ api, parts, onGone }) {
    this.#api = api;
    this.#parts = parts;
    this.#onGone = onGone;
    this.#groups = new Groups(parts.list);
    this.#filters = new Filters({ api, parts: parts.filters, onChange: () => this.reload() });
    parts.list.addEventListener("keydown", (e) => this.#arrows(e));
    this.#observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.#loadMore();
    }, { root: parts.list.closest(".conv-scroll") });
    parts.toggle.addEventListener("click", () => this.setOpen(!parts.root.classList.contains("open")));
    parts.backdrop.addEventListener("click", () => this.setOpen(false));
    parts.close.addEventListener("click", () => this.setOpen(false, true));
    setInterval(() => { for (const id of this.#items.keys()) this.#draw(id); }, TIMES_EVERY_MS);
    parts.root.addEventListener("keydown", (e) => { if (e.key === "Escape") this.setOpen(false, true); });
  }

  /** Forget what is shown and load the first page again. */
  async reload() {
    this.#items.clear();
    this.#groups.clear();
    this.#cursor = null;
    this.#hasMore = true;
    this.#loading = false;
    this.#generation += 1;
    this.#parts.status.dataset.error = "";
    this.#observer.disconnect();
    await Promise.all([this.#loadMore(), this.#filters.refresh()]);
  }

  get(id) {
    return this.#leaving.has(id) ? null : this.#items.get(id)?.conv ?? null;
  }

  /**
   * Add or refresh a conversation in its group; `toTop` moves it first (newest
   * activity). One the current filter does not show leaves the list.
   */
  upsert(conv, { toTop = false } = {}) {
    let item = this.#items.get(conv.id);
    const merged = { ...item?.conv, ...conv };
    if (!this.#filters.shows(merged)) { this.remove(conv.id); return; }
    if (!item) {
      item = { conv, li: this.#build(conv.id) };
      this.#items.set(conv.id, item);
    }
    item.conv = merged;
    this.#groups.place(item.li, merged, { toTop });
    this.#draw(conv.id);
    this.#showEmpty();
  }

  remove(id) {
    const item = this.#items.get(id);
    if (item) this.#groups.remove(item.li);
    this.#items.delete(id);
    this.#showEmpty();
  }

  /**
   * A conversation as another device changed it: shown as it is now, moved up
   * when it has new activity (or is new here); an archived one leaves the list.
   */
  changed(conv) {
    if (this.#deleted.has(conv.id) || this.#leaving.has(conv.id)) return;
    if (this.#filters.shows(conv) && !this.#filters.offers(conv)) this.#filters.refresh();
    const known = this.#items.get(conv.id)?.conv;
    this.upsert(conv, { toTop: !known || (conv.updated_at ?? "") > (known.updated_at ?? "") });
  }

  /** Deleted on another device: gone from the list (and from view, if it was open). */
  deleted(id) {
    this.#deleted.add(id);
    this.remove(id);
    if (id === this.#currentId) this.#onGone(id);
  }

  /** Mark the open conversation (null: a new chat). */
  setCurrent(id) {
    this.#currentId = id;
    for (const itemId of this.#items.keys()) this.#draw(itemId);
  }

  #draw(id) {
    const { conv, li } = this.#items.get(id) ?? {};
    if (li) {
      drawRow(li, {
        title: titleOf(conv), updatedAt: conv.updated_at, current: id === this.#currentId,
        pinned: Boolean(conv.pinned), tags: conv.tags ?? [],
      });
    }
  }

  // ↑/↓ from one row's link to the next visible one; Enter follows the link.
  #arrows(e) {
    if ((e.key !== "ArrowDown" && e.key !== "ArrowUp") || !e.target.matches(".conv-link")) return;
    const links = [...this.#parts.list.querySelectorAll(".conv-link")];
    const next = links[links.indexOf(e.target) + (e.key === "ArrowDown" ? 1 : -1)];
    e.preventDefault();
    next?.focus();
  }

  setOpen(open, returnFocus = false) {
    const { root, toggle, backdrop } = this.#parts;
    root.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
    backdrop.hidden = !open;
    if (open) root.querySelector("button, a")?.focus();
    else if (returnFocus) toggle.focus();
  }

  async #loadMore() {
    if (this.#loading || !this.#hasMore) return;
    const generation = this.#generation;
    this.#loading = true;
    this.#status(this.#items.size ? "Loading more…" : "Loading…");
    try {
      const page = await this.#api.listConversations(this.#cursor, this.#filters.filter);
      if (generation !== this.#generation) return;
      for (const conv of page.items) this.upsert(conv);
      this.#cursor = page.next_cursor ?? null;
      this.#hasMore = Boolean(this.#cursor);
      this.#status("");
    } catch (err) {
      if (generation !== this.#generation) return;
      this.#status(describeError(err), true);
    } finally {
      if (generation === this.#generation) this.#loading = false;
    }
    this.#showEmpty();
    // Observe afresh: if the sentinel is still in view, the next page loads too.
    this.#observer.unobserve(this.#parts.sentinel);
    if (this.#hasMore) this.#observer.observe(this.#parts.sentinel);
  }

  #showEmpty() {
    if (!this.#loading && !this.#hasMore && !this.#parts.status.dataset.error) {
      const { archived, project, tag, unfiled } = this.#filters.filter;
      const none = archived ? "No archived conversations." : project || tag || unfiled ? "None here." : "No conversations yet.";
      this.#status(this.#items.size ? "" : none);
    }
  }

  #status(text, failed = false) {
    const { status } = this.#parts;
    status.textContent = text;
    status.dataset.error = failed ? "1" : "";
    if (failed) {
      const retry = el("button", "link-button", "Try again");
      retry.type = "button";
      retry.addEventListener("click", () => { status.dataset.error = ""; this.#loadMore(); });
      status.append(" ", retry);
    }
    status.hidden = !text;
  }

  #build(id) {
    return buildRow(id, {
      open: () => this.setOpen(false),
      pin: () => this.#file(id, { pinned: !this.get(id)?.pinned }),
      rename: () => this.#rename(id),
      tags: () => this.#ask(id, "tags"),
      move: () => this.#ask(id, "project"),
      archive: () => this.#archive(id),
      delete: () => this.#delete(id),
    }, { archived: this.#filters.filter.archived });
  }

  async #ask(id, kind) {
    const conv = this.get(id);
    if (!conv) return;
    const patch = await askToFile(this.#parts.fileDialog, { kind, conv, projects: this.#filters.projects });
    if (patch) await this.#file(id, patch);
  }

  // Pin, tag or move: the row shows the conversation as stored, the filters what is offered.
  async #file(id, patch) {
    try {
      this.upsert(await this.#api.updateConversation(id, patch));
      await this.#filters.refresh();
    } catch (err) {
      this.#status(describeError(err), true);
    }
  }

  #rename(id) {
    const item = this.#items.get(id);
    const link = item.li.querySelector(".conv-link");
    const input = el("input", "conv-title-input");
    input.value = item.conv.title ?? "";
    input.maxLength = 200;
    input.setAttribute("aria-label", "Conversation title");
    let done = false;
    const finish = async (save, refocus) => {
      if (done) return;
      done = true;
      input.replaceWith(link);
      this.#draw(id);
      if (refocus) link.focus();
      const title = input.value.trim();
      if (!save || !title || title === item.conv.title) return;
      try {
        this.upsert(await this.#api.updateConversation(id, { title }));
      } catch (err) {
        this.#status(describeError(err), true);
      }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); finish(true, true); }
      if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); finish(false, true); }
    });
    input.addEventListener("blur", () => finish(true, false));
    link.replaceWith(input);
    input.focus();
    input.select();
  }

  // In the Archived view the same action unarchives.
  async #archive(id) {
    const archived = !this.#filters.filter.archived;
    await this.#leave(id, () => this.#api.updateConversation(id, { archived }), archived);
    await this.#filters.refresh();
  }

  async #delete(id) {
    const { dialog } = this.#parts;
    dialog.querySelector("[data-title]").textContent = titleOf(this.get(id));
    dialog.returnValue = "";
    dialog.showModal();
    const answer = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
    if (answer === "delete") await this.#leave(id, () => this.#api.deleteConversation(id));
  }

  // Archive or delete: the list stops offering the conversation at once.
  async #leave(id, request, gone = true) {
    this.#leaving.add(id);
    try {
      await request();
    } catch (err) {
      if (err.status !== 404) { // 404: already gone elsewhere, which is what we wanted
        this.#leaving.delete(id);
        this.#status(describeError(err), true);
        return;
      }
    }
    this.#leaving.delete(id);
    this.remove(id);
    if (gone && id === this.#currentId) this.#onGone(id);
  }
}

export function titleOf(conv) {
  return conv?.title?.trim() || UNTITLED;
}
