// Live turns: folds a turn's frames into its state (text so far, its parts:
// thinking, tool calls, text; status, error, stop reason) and remembers running turns in sessionStorage, so that a reload can
// re-attach after the last seq it had and lose no text. Drawing is the
// caller's job, through onUpdate(turn, frameType).

import { addCitation, addStreamed, addToolCall, addToolResult, finishThinking, partsFromBlocks, textOf } from "./parts.js";
import { endsTurn, seqAfter } from "./protocol.js";
import { forgetRunningTurn, runningTurns, saveRunningTurn } from "./session.js";

const SAVE_EVERY_MS = 300;

export class Turns {
  #transport;
  #onUpdate;
  #live = new Map(); // turn id -> turn
  #stalled = new Map(); // turn id -> a turn whose connection was lost (Retry re-attaches)
  #unsaved = new Set();
  #saveTimer = 0;

  constructor({ transport, onUpdate }) {
    this.#transport = transport;
    this.#onUpdate = onUpdate;
  }

  /** Stop tracking everything (sign-out): nothing more is drawn or saved. */
  close() {
    clearTimeout(this.#saveTimer);
    this.#unsaved.clear();
    this.#live.clear();
    this.#stalled.clear();
    this.#onUpdate = () => {};
  }

  get(turnId) {
    return this.#live.get(turnId) ?? null;
  }

  /** Live turns, optionally only those of one conversation. */
  list(conversationId) {
    const all = [...this.#live.values()];
    return conversationId === undefined ? all : all.filter((t) => t.conversationId === conversationId);
  }

  /**
   * Start a turn; without conversationId the service makes a new conversation.
   * `thinking`: this turn's extended thinking setting, when it is not the conversation's.
   */
  start({
    content, conversationId = null, model = null, thinking = null, origin = null, parentMessageId, regenerateMessageId = null,
    attachments = [],
  }) {
    const turn = this.#track(crypto.randomUUID(), { content, conversationId, origin, thinking, isNew: !conversationId });
    const request = { type: "turn.start", turn_id: turn.turnId };
    if (content !== null) request.content = content;
    if (attachments.length) request.attachments = attachments;
    if (conversationId) request.conversation_id = conversationId;
    // Where it goes in the tree (protocol.md, Branches): absent, after the branch shown.
    if (parentMessageId !== undefined) request.parent_message_id = parentMessageId;
    if (regenerateMessageId) request.regenerate_message_id = regenerateMessageId;
    if (model) request.model = model;
    if (thinking) request.thinking = thinking;
    this.#transport.startTurn(request, (frame) => this.#handle(turn, frame));
    return turn;
  }

  /** Re-attach to the turns this tab was following before a reload. */
  resumeSaved() {
    for (const [turnId, saved] of Object.entries(runningTurns())) {
      if (this.#live.has(turnId)) continue;
      const text = saved.text ?? "";
      const parts = Array.isArray(saved.parts) ? saved.parts : partsFromBlocks(null, text);
      const turn = this.#track(turnId, { conversationId: saved.conversationId, started: true, seq: saved.seq ?? 0, text, parts });
      this.#transport.resume(turnId, turn.seq, (frame) => this.#handle(turn, frame));
    }
  }

  /** Follow a turn seen still streaming in the history (another tab's). */
  follow(turnId, conversationId) {
    if (this.#live.has(turnId)) return;
    const turn = this.#track(turnId, { conversationId, started: true });
    this.#transport.resume(turnId, 0, (frame) => this.#handle(turn, frame));
  }

  /** Stop a turn; `turn.stopping` says how far ("sent", "retrying") until it ends. */
  cancel(turnId) {
    const turn = this.#live.get(turnId);
    if (!turn || turn.stopping) return;
    this.#setStopping(turn, "sent");
    // Before turn.started the service may not know the turn yet: cancel once it does.
    if (turn.started) this.#sendCancel(turn);
  }

  /** Retry of a turn whose connection was lost: follow it again after the last seq it had. */
  reattach(turnId) {
    const turn = this.#stalled.get(turnId);
    if (!turn) return false;
    this.#stalled.delete(turnId);
    Object.assign(turn, { status: "streaming", error: null, stopping: null });
    this.#live.set(turnId, turn);
    this.#transport.resume(turnId, turn.seq, (frame) => this.#handle(turn, frame));
    this.#onUpdate(turn, "reattach");
    return true;
  }

  #sendCancel(turn) {
    const onRetry = () => this.#setStopping(turn, "retrying");
    // Refused for good (rare: not a network failure): Stop may be pressed again.
    this.#transport.cancel(turn.turnId, onRetry).catch(() => this.#setStopping(turn, null));
  }

  #setStopping(turn, state) {
    if (turn.status !== "streaming" || turn.stopping === state) return;
    turn.stopping = state;
    this.#onUpdate(turn, "stopping");
  }

  #track(turnId, fields) {
    const turn = {
      turnId, conversationId: null, content: null, origin: null, isNew: false, thinking: null,
      started: false, seq: 0, text: "", parts: [], status: "streaming", error: null, stopReason: null,
      userMessageId: null, assistantMessageId: null, parentMessageId: null, stopping: null, lost: false,
      ...fields,
    };
    this.#live.set(turnId, turn);
    return turn;
  }

  #handle(turn, frame) {
    turn.seq = seqAfter(turn.seq, frame) ?? turn.seq;
    const saved = frame.message ?? frame.partial;
    switch (frame.type) {
      case "turn.started":
        Object.assign(turn, {
          started: true, conversationId: frame.conversation_id,
          userMessageId: frame.user_message_id, assistantMessageId: frame.assistant_message_id,
          parentMessageId: frame.parent_message_id ?? null,
        });
        if (turn.stopping) this.#sendCancel(turn);
        break;
      case "turn.delta": turn.text += frame.text ?? ""; addStreamed(turn.parts, "text", frame.text); break; // merged deltas too: just append
      case "turn.thinking": addStreamed(turn.parts, "thinking", frame.text); break;
      case "turn.tool_call": addToolCall(turn.parts, frame); break;
      case "turn.tool_result": addToolResult(turn.parts, frame); break;
      case "turn.citation": addCitation(turn.parts, frame); break;
      case "turn.snapshot": this.#takeSaved(turn, saved); break;
      case "turn.done": this.#takeSaved(turn, saved); turn.status = "complete"; turn.stopReason = frame.stop_reason ?? saved?.stop_reason ?? null; turn.usage = frame.usage; break;
      case "turn.cancelled": this.#takeSaved(turn, saved); turn.status = "cancelled"; break;
      case "turn.error": this.#takeSaved(turn, saved); turn.status = "error"; turn.error = frame; break;
      case "error":
        if (!endsTurn(frame)) return; // a cancel that came too late: the turn ends by itself
        turn.status = "error";
        turn.error = frame;
        // Re-attaching found nothing: the history has the last word on this turn.
        turn.lost = frame.code === "not_found" && turn.started;
        break;
      default:
        return;
    }
    if (frame.code === "disconnected") this.#stall(turn);
    else if (endsTurn(frame)) this.#end(turn);
    else if (frame.type === "turn.started") this.#write(turn); // a reload right now must find it
    else if (turn.started) this.#save(turn);
    this.#onUpdate(turn, frame.type);
  }

  // A stored message (snapshot, ending) has the last word on the text and its
  // blocks; the timing of thinking seen live is kept.
  #takeSaved(turn, saved) {
    finishThinking(turn.parts);
    if (!saved) return;
    turn.text = saved.content ?? turn.text;
    if (!Array.isArray(saved.blocks)) {
      // No blocks (an older service): the stored text stands in for the streamed text.
      if (textOf(turn.parts) !== turn.text) turn.parts = [...turn.parts.filter((p) => p.kind !== "text"), ...partsFromBlocks(null, turn.text)];
      return;
    }
    const timed = turn.parts.filter((p) => p.kind === "thinking" && p.endedAt);
    turn.parts = partsFromBlocks(saved.blocks, turn.text);
    turn.parts.filter((p) => p.kind === "thinking").forEach((p, i) => Object.assign(p, timed[i] && { startedAt: timed[i].startedAt, endedAt: timed[i].endedAt }));
  }

  // The transport gave up on the connection, not the turn: it may still run
  // on the server, so it stays saved (a reload re-attaches) and Retry re-attaches.
  #stall(turn) {
    this.#live.delete(turn.turnId);
    this.#stalled.set(turn.turnId, turn);
  }

  #end(turn) {
    this.#live.delete(turn.turnId);
    this.#unsaved.delete(turn);
    forgetRunningTurn(turn.turnId);
  }

  // Deltas come many a second: write them to sessionStorage a few times a second.
  #save(turn) {
    this.#unsaved.add(turn);
    this.#saveTimer ||= setTimeout(() => {
      this.#saveTimer = 0;
      for (const t of this.#unsaved) this.#write(t);
      this.#unsaved.clear();
    }, SAVE_EVERY_MS);
  }

  #write(turn) {
    saveRunningTurn(turn.turnId, { conversationId: turn.conversationId, seq: turn.seq, text: turn.text, parts: turn.parts });
  }
}
