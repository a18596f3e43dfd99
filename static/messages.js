// The message list: one <article data-testid="message"> per message, the
// streamed answer re-rendered at most once a frame, and scrolling that
// follows the stream until the reader scrolls up to read. An answer is drawn
// from its parts (text, thinking, tool calls: answer.js), and says how it
// stopped when that was not the natural end.

import { drawAnswer } from "./answer.js";
import { drawAttachments } from "./attachment-view.js";
import { el } from "./inline.js";
import { describeError } from "./errors.js";
import { drawTools, openEditor } from "./message-tools.js";
import { partsFromBlocks } from "./parts.js";
import { usageText, usageTitle } from "./usage.js";

const STATE_LABELS = {
  pending: "Sending…",
  streaming: "Answering…",
  cancelled: "Stopped",
  interrupted: "Interrupted",
  error: "Error",
};
const RETRYABLE = new Set(["interrupted", "error"]);
// How a complete answer stopped, when the reader should know (protocol.md, stop_reason).
const CUT_SHORT = { note: "Cut short (length limit)", canContinue: true };
const ENDINGS = {
  max_tokens: CUT_SHORT,
  tool_use: { note: "Cut short (tool round limit)", canContinue: true },
  pause_turn: { note: "Cut short (tool round limit)", canContinue: true },
  refusal: { note: "Claude declined to answer this." },
  model_context_window_exceeded: { note: "This conversation no longer fits the model. Start a new chat to go on." },
};
const NEAR_BOTTOM_PX = 48;

export class MessageList {
  #scroller;
  #list;
  #jump;
  #onRetry;
  #onContinue;
  #tools;
  #stick = true;
  #content = new WeakMap(); // element -> its text (for Copy, Retry)
  #parts = new WeakMap(); // answer element -> its parts (parts.js)
  #meta = new WeakMap(); // element -> its place in the tree: {id, parentId, siblings, feedback}
  #files = new WeakMap(); // question element -> its attachments' blocks (an edit sends them again)
  #dirty = new Set();
  #frame = 0;

  /**
   * parts: scroller, list, jumpButton, topSentinel; onRetry(el), onContinue(el), onNearTop();
   * tools: the handlers of message-tools.js (onEdit, onRegenerate, onSwitch, onRate).
   */
  constructor({ scroller, list, jumpButton, topSentinel, onRetry, onContinue, onNearTop, tools }) {
    this.#scroller = scroller;
    this.#list = list;
    this.#jump = jumpButton;
    this.#onRetry = onRetry;
    this.#onContinue = onContinue;
    this.#tools = tools;
    scroller.addEventListener("scroll", () => this.#onScroll(), { passive: true });
    jumpButton.addEventListener("click", () => this.scrollToEnd(true));
    new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) onNearTop(); },
      { root: scroller, rootMargin: "200px 0px 0px 0px" }).observe(topSentinel);
  }

  /** Replace everything with `messages` (oldest first) and show the latest. */
  replace(messages) {
    this.#dirty.clear();
    this.#list.replaceChildren(...messages.map((m) => this.#build(m)));
    this.scrollToEnd();
  }

  /** Put an older page above what is shown without moving what the reader sees. */
  prepend(messages) {
    const before = this.#scroller.scrollHeight;
    this.#list.prepend(...messages.map((m) => this.#build(m)));
    this.#scroller.scrollTop += this.#scroller.scrollHeight - before;
  }

  /** Append one message and follow it: the user just sent it. */
  append(message) {
    const node = this.#build(message);
    this.#list.append(node);
    this.scrollToEnd();
    return node;
  }

  find(turnId, role) {
    return [...this.#list.children].find((n) => n.dataset.turnId === turnId && n.dataset.role === role) ?? null;
  }

  /** The last question shown: what ↑ in an empty composer edits. */
  lastUserNode() {
    const users = this.#list.querySelectorAll(':scope > [data-role="user"]');
    return users[users.length - 1] ?? null;
  }

  /** The question above an answer. */
  userNodeBefore(node) {
    for (let n = node.previousElementSibling; n; n = n.previousElementSibling) {
      if (n.dataset.role === "user") return n;
    }
    return null;
  }

  /** Where `node` sits in the conversation's tree. */
  placeOf(node) {
    return this.#meta.get(node) ?? {};
  }

  /** A question's attachments (blocks with file_id), as stored or as sent. */
  filesOf(node) {
    return this.#files.get(node) ?? [];
  }

  /** Edit a question in place; `onSave(text)` once the person saves. */
  edit(node, onSave) {
    if (node.classList.contains("editing")) return;
    openEditor(node, this.#content.get(node) ?? "", { onSave });
  }

  /** Remove `node` and everything after it: the branch below it is about to change. */
  removeFrom(node) {
    while (node.nextElementSibling) this.remove(node.nextElementSibling);
    this.remove(node);
  }

  /** The answer's rating changed (stored, or cleared with null). */
  setFeedback(node, feedback) {
    this.#meta.set(node, { ...this.placeOf(node), feedback });
    this.#drawTools(node);
  }

  /** The user message shown before `node`: what a Retry re-sends. */
  previousUserText(node) {
    for (let n = node.previousElementSibling; n; n = n.previousElementSibling) {
      if (n.dataset.role === "user") return this.#content.get(n) ?? "";
    }
    return null;
  }

  /**
   * Change a message: {content, parts, status, error, stopReason, turnId,
   * messageId, parentId}. New text is drawn on the next frame (a stream sends many
   * small deltas); a status change is drawn at once.
   */
  update(node, change) {
    if (change.turnId) node.dataset.turnId = change.turnId;
    if (change.parentId !== undefined) this.#meta.set(node, { ...this.placeOf(node), parentId: change.parentId });
    if (change.messageId && change.messageId !== node.dataset.messageId) {
      node.dataset.messageId = change.messageId;
      this.#meta.set(node, { ...this.placeOf(node), id: change.messageId });
      if (!change.status) this.#drawTools(node);
    }
    if (change.stopReason) node.dataset.stopReason = change.stopReason;
    if (change.usage) this.#drawUsage(node, change.usage);
    if (change.parts) this.#parts.set(node, change.parts);
    if (change.content !== undefined || change.parts) {
      if (change.content !== undefined) this.#content.set(node, change.content);
      this.#dirty.add(node);
      this.#frame ||= requestAnimationFrame(() => this.#flush());
    }
    if (change.status) {
      this.#setStatus(node, change.status, change.error);
      this.#flush();
    }
  }

  /** Say what is happening to a running answer ("Stopping…"); "" for the plain state word. */
  note(node, text) {
    node.querySelector(".msg-state").textContent = text || STATE_LABELS[node.dataset.status] || "";
  }

  remove(node) {
    this.#dirty.delete(node);
    node.remove();
  }

  scrollToEnd(smooth = false) {
    this.#stick = true;
    this.#jump.hidden = true;
    const reduce = matchMedia("(prefers-reduced-motion: reduce)").matches;
    this.#scroller.scrollTo({ top: this.#scroller.scrollHeight, behavior: smooth && !reduce ? "smooth" : "auto" });
  }

  #onScroll() {
    const s = this.#scroller;
    this.#stick = s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
    this.#jump.hidden = this.#stick;
  }

  #flush() {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    for (const node of this.#dirty) this.#drawBody(node);
    this.#dirty.clear();
    if (this.#stick) this.#scroller.scrollTop = this.#scroller.scrollHeight;
  }

  #build(message) {
    const node = el("article", `msg msg-${message.role}`);
    node.dataset.testid = "message";
    node.dataset.role = message.role;
    if (message.turn_id) node.dataset.turnId = message.turn_id;
    if (message.id) node.dataset.messageId = message.id;
    if (message.stop_reason) node.dataset.stopReason = message.stop_reason;
    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-author", message.role === "user" ? "You" : "Assistant"), el("span", "msg-state"));
    const body = el("div", "msg-body");
    node.append(meta);
    if (message.role === "user") { // its files, above its words
      const files = el("div", "msg-files");
      drawAttachments(files, message.blocks);
      node.append(files);
      this.#files.set(node, (message.blocks ?? []).filter((block) => block.file_id));
    }
    node.append(body, el("p", "msg-error"), el("p", "msg-note"), el("p", "msg-usage"), el("div", "msg-actions"), el("div", "msg-tools"));
    this.#drawUsage(node, message.usage);
    this.#content.set(node, message.content ?? "");
    this.#meta.set(node, {
      id: message.id ?? null, parentId: message.parent_id ?? null, siblings: message.siblings ?? null, feedback: message.feedback ?? null,
    });
    if (message.role === "assistant") this.#parts.set(node, message.parts ?? partsFromBlocks(message.blocks, message.content ?? ""));
    // The history keeps no reason for a failed answer; a live turn.error does.
    const error = message.error ?? { message: "This answer failed before it was finished." };
    this.#setStatus(node, message.status || "complete", error);
    this.#drawBody(node);
    return node;
  }

  #drawBody(node) {
    const body = node.querySelector(".msg-body");
    const text = this.#content.get(node) ?? "";
    if (node.dataset.role === "user") body.textContent = text; // shown as typed
    else drawAnswer(body, this.#parts.get(node) ?? partsFromBlocks(null, text), node.dataset.status === "streaming");
  }

  #setStatus(node, status, error) {
    node.dataset.status = status;
    node.querySelector(".msg-state").textContent = STATE_LABELS[status] ?? "";
    // Screen readers hear the answer once it is complete, not every frame of it.
    node.querySelector(".msg-body").setAttribute("aria-busy", String(status === "streaming"));
    const errorLine = node.querySelector(".msg-error");
    errorLine.textContent = status === "error" ? describeError(error ?? {})
      : status === "interrupted" ? describeError({ code: "interrupted" }) : "";
    errorLine.hidden = !errorLine.textContent;
    const actions = node.querySelector(".msg-actions");
    actions.replaceChildren();
    if (node.dataset.role === "assistant" && RETRYABLE.has(status)) {
      const retry = el("button", "retry", "Retry");
      retry.type = "button";
      retry.addEventListener("click", () => this.#onRetry(node));
      actions.append(retry);
    }
    this.#drawEnding(node, status === "complete" ? ENDINGS[node.dataset.stopReason] : null);
    actions.hidden = !actions.childElementCount;
    this.#drawTools(node);
  }

  // Quiet, one line: what the answer cost, cache reads visible.
  #drawUsage(node, usage) {
    const line = node.querySelector(".msg-usage");
    line.dataset.testid = "usage";
    line.textContent = node.dataset.role === "assistant" ? usageText(usage) : "";
    line.title = usageTitle(usage);
    line.hidden = !line.textContent;
  }

  #drawTools(node) {
    const tools = node.querySelector(".msg-tools");
    if (!tools || !this.#tools) return;
    drawTools(tools, node, { ...this.placeOf(node), content: this.#content.get(node) }, this.#tools);
  }

  // A cut-short answer offers Continue (a new turn); CSS shows it on the last answer only.
  #drawEnding(node, ending) {
    const noteLine = node.querySelector(".msg-note");
    noteLine.textContent = ending?.note ?? "";
    noteLine.hidden = !ending;
    node.dataset.ending = ending ? node.dataset.stopReason : "";
    if (!ending?.canContinue) return;
    const more = el("button", "continue", "Continue");
    more.type = "button";
    more.addEventListener("click", () => this.#onContinue(node));
    node.querySelector(".msg-actions").append(more);
  }
}
