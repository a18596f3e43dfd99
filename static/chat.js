// The open conversation: its history, the composer, and the live turns shown
// in it. A conversation that is not open keeps streaming in the background
// (Turns holds its text); opening it again draws what was missed.

import { describeError } from "./errors.js";
import { MessageList } from "./messages.js";
import { titleOf } from "./sidebar.js";
import { Turns } from "./turns.js";
import { newestUsage } from "./usage.js";

const TITLE_CHECKS_MS = [500, 2000, 5000];
const STOPPING = { sent: "Stopping…", retrying: "Stopping… (the server did not answer; trying again)" };

export class Chat {
  #api;
  #sidebar;
  #models;
  #thinking;
  #parts;
  #messages;
  #turns;
  #currentId = null;
  #view = 0; // bumped on every open: late answers for an old view are dropped
  #older = null; // cursor of the page before the first shown
  #loadingOlder = false;
  #unsent = new WeakSet(); // nodes of turns the service refused: not in the history
  #lost = new Set(); // turns a re-attach did not find: do not follow them again
  #usage; // a UsageView: the header's total and budget left
  #pushedTitle = 0; // the view whose title a push set: newer than a read begun before it

  /**
   * parts: title, form, input, stop, notice, history, messages, scroller,
   * jump, topSentinel. models: a Models; thinking: a ThinkingSetting; usage: a UsageView.
   */
  constructor({ api, sidebar, models, thinking, parts, usage }) {
    this.#api = api;
    this.#usage = usage;
    this.#sidebar = sidebar;
    this.#models = models;
    this.#thinking = thinking;
    this.#parts = parts;
    this.#messages = new MessageList({
      scroller: parts.scroller, list: parts.messages, jumpButton: parts.jump, topSentinel: parts.topSentinel,
      onRetry: (node) => this.#retry(node), onNearTop: () => this.#loadOlder(),
      onContinue: () => this.#startTurn("Continue"),
      tools: {
        onEdit: (node) => this.#edit(node),
        onRegenerate: (node) => this.#regenerate(node),
        onSwitch: (node, id) => this.#switchTo(id),
        onRate: (node, rating, comment) => this.#rate(node, rating, comment),
      },
    });
    parts.form.addEventListener("submit", (e) => { e.preventDefault(); this.#send(); });
    parts.input.addEventListener("keydown", (e) => {
      // Enter sends, Shift+Enter is a new line; never mid-composition (IME).
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.#send(); }
      // ↑ in an empty composer edits the last question, as in other chat apps.
      if (e.key === "ArrowUp" && !parts.input.value && !e.isComposing) {
        const last = this.#messages.lastUserNode();
        if (last) { e.preventDefault(); this.#edit(last); }
      }
    });
    parts.input.addEventListener("input", () => this.#fitInput());
    parts.stop.addEventListener("click", () => { for (const t of this.#liveHere()) this.#turns.cancel(t.turnId); });
  }

  /** Signed in: run turns over `transport`, starting with those this tab was following before a reload. */
  begin(transport) {
    this.#turns = new Turns({ transport, onUpdate: (turn, type) => this.#onTurn(turn, type) });
    this.#turns.resumeSaved();
  }

  /** Signed out: drop the live turns and what is shown. */
  end() {
    this.#turns?.close();
    this.#turns = null;
    this.#currentId = null;
    this.#view += 1;
    this.#messages.replace([]);
    this.notice("");
  }

  /** Show a conversation, or an empty new chat for null. */
  async open(id) {
    const view = ++this.#view;
    this.#currentId = id;
    this.#older = null;
    this.#sidebar.setCurrent(id);
    this.#models.remember(null);
    this.#thinking.remember(null);
    this.notice("");
    this.#setTitle(id ? this.#sidebar.get(id) : null);
    this.#messages.replace([]);
    this.#updateControls();
    if (!id) { this.#history(""); return; }
    this.#history("Loading…");
    try {
      const [page, conv] = await Promise.all([this.#api.listMessages(id), this.#api.getConversation(id)]);
      if (view !== this.#view) return;
      this.#history("");
      if (this.#pushedTitle !== view) this.#setTitle(conv);
      this.#models.remember(conv);
      this.#thinking.remember(conv);
      this.#messages.replace(page.items);
      this.#older = page.next_cursor ?? null;
      this.#bindLive(page.items);
      this.#usage?.contextOf(newestUsage(page.items));
    } catch (err) {
      if (view !== this.#view) return;
      this.#history(describeError(err));
      if (err.status === 404) this.#sidebar.remove(id);
    }
  }

  focusComposer() { this.#parts.input.focus(); }

  /** A conversation changed on another device: its title here, if it is the one open. */
  conversationChanged(conv) {
    if (conv.id !== this.#currentId || conv.archived) return;
    this.#setTitle(conv);
    this.#pushedTitle = this.#view;
  }

  /**
   * A turn started on another device. In the open conversation it is shown and
   * followed live: the history read again has its question and the answer
   * being written, and #bindLive re-attaches to that answer (turn.resume).
   */
  turnRunning(turn) {
    if (!this.#turns || this.#turns.get(turn.turn_id) || this.#lost.has(turn.turn_id)) return;
    if (turn.conversation_id === this.#currentId) this.open(this.#currentId);
  }

  #send() {
    const content = this.#parts.input.value.trimEnd();
    const tray = this.#parts.attachments;
    if (tray?.uploading()) { this.notice("Wait for the files to finish uploading."); return; }
    const files = tray ? tray.blocks() : [];
    if ((!content.trim() && !files.length) || !this.#startTurn(content, {}, files)) return;
    this.#parts.input.value = "";
    tray?.clear();
    this.#fitInput();
  }

  // Retry re-sends the user message before the failed answer, as a new turn;
  // an answer whose connection was lost is picked up again instead.
  #retry(node) {
    if (this.#turns?.reattach(node.dataset.turnId)) { this.#updateControls(); return; }
    const content = this.#messages.previousUserText(node);
    if (!content || this.#liveHere().length) { this.#startTurn(content); return; }
    if (this.#unsent.has(node)) {
      // Refused before it started, so it is not in the history: replace it.
      const userNode = node.previousElementSibling;
      if (userNode?.dataset.role === "user") this.#messages.remove(userNode);
      this.#messages.remove(node);
    }
    this.#startTurn(content);
  }

  /**
   * Start a turn in the open conversation (or a new one); false if refused here.
   * `place`: {parentMessageId} (an edit: null for a first question) or
   * {regenerateMessageId, userNode} (a new answer to the question shown in userNode).
   */
  #startTurn(content, place = {}, files = []) {
    const regenerating = Boolean(place.regenerateMessageId);
    if ((!content && !regenerating && !files.length) || !this.#turns) return false;
    if (this.#busy()) return false;
    this.notice("");
    const turn = this.#turns.start({
      content: regenerating ? null : content, conversationId: this.#currentId, model: this.#models.selected(),
      thinking: this.#thinking.forNewChat(), origin: this.#view,
      parentMessageId: place.parentMessageId, regenerateMessageId: place.regenerateMessageId,
      attachments: files.map((f) => f.file_id),
    });
    turn.branching = "parentMessageId" in place || regenerating;
    turn.userNode = regenerating ? place.userNode
      : this.#messages.append({ role: "user", content, blocks: files, status: "pending", turn_id: turn.turnId });
    turn.node = this.#messages.append({ role: "assistant", content: "", parts: turn.parts, status: "streaming", turn_id: turn.turnId });
    this.#updateControls();
    return true;
  }

  // One turn at a time per conversation: say so rather than send a sure conflict.
  #busy() {
    if (!this.#liveHere().length) return false;
    this.notice(describeError({ code: "conflict" }));
    return true;
  }

  // Edit = a new question beside this one (the same parent), answered anew; the
  // original stays, a "‹ 1/2 ›" away.
  #edit(node) {
    if (this.#busy() || !this.#currentId) return;
    const { parentId = null } = this.#messages.placeOf(node);
    const files = this.#messages.filesOf(node); // the new question keeps the old one's files
    this.#messages.edit(node, (text) => {
      if (this.#busy()) return;
      this.#messages.removeFrom(node);
      this.#startTurn(text, { parentMessageId: parentId }, files);
    });
  }

  // Regenerate = a new answer to the same question, beside this one.
  #regenerate(node) {
    const answerId = node.dataset.messageId;
    const userNode = this.#messages.userNodeBefore(node);
    if (this.#busy() || !answerId || !userNode || !this.#currentId) return;
    this.#messages.removeFrom(node);
    this.#startTurn(null, { regenerateMessageId: answerId, userNode });
  }

  // "‹ 2/3 ›": show the newest branch through that sibling, as the service keeps it.
  async #switchTo(messageId) {
    const id = this.#currentId;
    if (this.#busy() || !id || !messageId) return;
    try {
      await this.#api.updateConversation(id, { current_leaf: messageId });
      await this.#reloadBranch(id);
    } catch (err) {
      if (id === this.#currentId) this.notice(describeError(err));
    }
  }

  async #rate(node, rating, comment) {
    const id = node.dataset.messageId;
    if (!id) return;
    try {
      const feedback = rating ? (await this.#api.rate(id, { rating, ...(comment ? { comment } : {}) })).feedback : null;
      if (!rating) await this.#api.clearRating(id);
      this.#messages.setFeedback(node, feedback);
    } catch (err) {
      this.notice(describeError(err));
    }
  }

  // Redraw the branch shown, with its siblings' counts, keeping the reader's place.
  async #reloadBranch(id) {
    const view = this.#view;
    const page = await this.#api.listMessages(id);
    if (view !== this.#view || id !== this.#currentId) return;
    this.#messages.replace(page.items);
    this.#older = page.next_cursor ?? null;
    this.#bindLive(page.items);
    this.#usage?.contextOf(newestUsage(page.items));
  }

  #onTurn(turn, type) {
    if (type === "turn.started" && turn.isNew) this.#adoptNewConversation(turn);
    else if (type === "turn.started") this.#bumpInSidebar(turn.conversationId);
    const node = this.#nodeOf(turn, "assistant");
    if (node) {
      this.#messages.update(node, {
        content: turn.text, parts: turn.parts, stopReason: turn.stopReason, usage: turn.usage,
        status: node.dataset.status === turn.status ? undefined : turn.status,
        error: turn.error, messageId: turn.assistantMessageId,
      });
      if (turn.status === "streaming") this.#messages.note(node, STOPPING[turn.stopping] ?? "");
      if (turn.status === "error" && !turn.started) this.#unsent.add(node);
    }
    const userNode = this.#nodeOf(turn, "user");
    if (userNode && type === "turn.started") {
      this.#messages.update(userNode, { status: "complete", messageId: turn.userMessageId, parentId: turn.parentMessageId });
    }
    if (userNode && turn.status === "error" && !turn.started) this.#messages.update(userNode, { status: "error" });
    if (turn.status === "streaming") return;
    // The turn is over.
    this.#updateControls();
    if (turn.started && turn.status === "complete") this.#usage?.turnEnded(turn.conversationId, turn.usage);
    if (turn.lost) { this.#lost.add(turn.turnId); if (turn.conversationId === this.#currentId) this.open(this.#currentId); }
    if (turn.isNew && turn.started) this.#watchTitle(turn.conversationId);
    // An edit or a regenerate made siblings: redraw the branch with its "‹ 2/2 ›".
    if (turn.branching && turn.started && turn.conversationId === this.#currentId) {
      this.#reloadBranch(turn.conversationId).catch(() => { /* the next open draws it */ });
    }
  }

  // The first answer of a new chat names its conversation: show it in the
  // sidebar, and if the reader is still on that new chat, that is now its page.
  #adoptNewConversation(turn) {
    this.#sidebar.upsert({ id: turn.conversationId, title: null, updated_at: new Date().toISOString() }, { toTop: true });
    this.#thinking.adopt(turn.conversationId, turn.thinking);
    if (this.#currentId === null && turn.origin === this.#view) {
      this.#currentId = turn.conversationId;
      history.replaceState(null, "", `#/c/${encodeURIComponent(turn.conversationId)}`);
      this.#sidebar.setCurrent(turn.conversationId);
      this.#thinking.remember({ id: turn.conversationId, thinking: turn.thinking });
    }
  }

  async #bumpInSidebar(id) {
    if (this.#sidebar.get(id)) { this.#sidebar.upsert({ id, updated_at: new Date().toISOString() }, { toTop: true }); return; }
    try { this.#sidebar.upsert(await this.#api.getConversation(id), { toTop: true }); } catch { /* shown when listed */ }
  }

  // The service names a new conversation shortly after its first answer.
  #watchTitle(id) {
    for (const ms of TITLE_CHECKS_MS) {
      setTimeout(async () => {
        if (!this.#sidebar.get(id)) return; // deleted or archived meanwhile
        let conv;
        try { conv = await this.#api.getConversation(id); } catch { return; }
        if (conv.archived || (conv.title ?? null) === (this.#sidebar.get(id)?.title ?? null)) return;
        this.#sidebar.upsert(conv);
        if (id === this.#currentId) this.#setTitle(conv);
      }, ms);
    }
  }

  // After the history is drawn, draw the live turns of this conversation over
  // it (their text is newer than the stored checkpoint) and follow turns that
  // are still streaming from somewhere else.
  #bindLive(items) {
    if (!this.#turns) return;
    for (const turn of this.#turns.list(this.#currentId)) {
      turn.node = this.#messages.find(turn.turnId, "assistant");
      turn.userNode = this.#messages.find(turn.turnId, "user");
      if (!turn.node) turn.node = this.#messages.append({ role: "assistant", content: turn.text, parts: turn.parts, status: "streaming", turn_id: turn.turnId });
      this.#messages.update(turn.node, { content: turn.text, parts: turn.parts, status: "streaming" });
    }
    for (const m of items) {
      if (m.role === "assistant" && m.status === "streaming" && m.turn_id && !this.#lost.has(m.turn_id)) {
        this.#turns.follow(m.turn_id, this.#currentId);
      }
    }
    this.#updateControls();
  }

  #nodeOf(turn, role) {
    const node = role === "user" ? turn.userNode : turn.node;
    if (node?.isConnected) return node;
    if (turn.conversationId !== this.#currentId || !turn.conversationId) return null;
    return this.#messages.find(turn.turnId, role);
  }

  #liveHere() {
    return (this.#turns?.list() ?? []).filter((t) => (this.#currentId ? t.conversationId === this.#currentId : !t.conversationId && t.origin === this.#view));
  }

  async #loadOlder() {
    if (!this.#older || this.#loadingOlder || !this.#currentId) return;
    const view = this.#view;
    this.#loadingOlder = true;
    try {
      const page = await this.#api.listMessages(this.#currentId, this.#older);
      if (view !== this.#view) return;
      this.#messages.prepend(page.items);
      this.#older = page.next_cursor ?? null;
    } catch (err) {
      if (view === this.#view) this.#history(describeError(err));
    } finally {
      this.#loadingOlder = false;
    }
  }

  #updateControls() {
    this.#parts.stop.hidden = !this.#liveHere().length;
  }

  #setTitle(conv) {
    const title = conv ? titleOf(conv) : "New chat";
    this.#parts.title.textContent = title;
    document.title = `${title} · Chat`;
    this.#usage?.conversation(conv);
  }

  /** A message for the reader above the composer ("" hides it). */
  notice(text) {
    this.#parts.notice.textContent = text;
    this.#parts.notice.hidden = !text;
  }

  #history(text) {
    this.#parts.history.textContent = text;
    this.#parts.history.hidden = !text;
  }

  #fitInput() {
    const input = this.#parts.input;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  }
}
