// Live turns: folds a turn's frames into its state (text so far, status,
// error) and remembers running turns in sessionStorage, so that a reload can
// re-attach after the last seq it had and lose no text. Drawing is the
// caller's job, through onUpdate(turn, frameType).

import { endsTurn } from "./protocol.js";
import { forgetRunningTurn, runningTurns, saveRunningTurn } from "./session.js";

const SAVE_EVERY_MS = 300;

export class Turns {
  #transport;
  #onUpdate;
  #live = new Map(); // turn id -> turn
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

  /** Start a turn; without conversationId the service makes a new conversation. */
  start({ content, conversationId = null, model = null, origin = null }) {
    const turn = this.#track(crypto.randomUUID(), { content, conversationId, origin, isNew: !conversationId });
    const request = { type: "turn.start", turn_id: turn.turnId, content };
    if (conversationId) request.conversation_id = conversationId;
    if (model) request.model = model;
    this.#transport.startTurn(request, (frame) => this.#handle(turn, frame));
    return turn;
  }

  /** Re-attach to the turns this tab was following before a reload. */
  resumeSaved() {
    for (const [turnId, saved] of Object.entries(runningTurns())) {
      if (this.#live.has(turnId)) continue;
      const turn = this.#track(turnId, { conversationId: saved.conversationId, started: true, seq: saved.seq ?? 0, text: saved.text ?? "" });
      this.#transport.resume(turnId, turn.seq, (frame) => this.#handle(turn, frame));
    }
  }

  /** Follow a turn seen still streaming in the history (another tab's). */
  follow(turnId, conversationId) {
    if (this.#live.has(turnId)) return;
    const turn = this.#track(turnId, { conversationId, started: true });
    this.#transport.resume(turnId, 0, (frame) => this.#handle(turn, frame));
  }

  cancel(turnId) {
    const turn = this.#live.get(turnId);
    if (!turn) return;
    // Before turn.started the service may not know the turn yet: cancel once it does.
    if (!turn.started) turn.cancelRequested = true;
    else this.#transport.cancel(turnId).catch(() => {});
  }

  #track(turnId, fields) {
    const turn = {
      turnId, conversationId: null, content: null, origin: null, isNew: false,
      started: false, seq: 0, text: "", status: "streaming", error: null,
      userMessageId: null, assistantMessageId: null, cancelRequested: false, lost: false,
      ...fields,
    };
    this.#live.set(turnId, turn);
    return turn;
  }

  #handle(turn, frame) {
    if (frame.seq) turn.seq = Math.max(turn.seq, frame.seq);
    const saved = frame.message ?? frame.partial;
    switch (frame.type) {
      case "turn.started":
        Object.assign(turn, {
          started: true, conversationId: frame.conversation_id,
          userMessageId: frame.user_message_id, assistantMessageId: frame.assistant_message_id,
        });
        if (turn.cancelRequested) this.#transport.cancel(turn.turnId).catch(() => {});
        break;
      case "turn.delta": turn.text += frame.text ?? ""; break; // merged deltas too: just append
      case "turn.snapshot": turn.text = saved?.content ?? turn.text; break;
      case "turn.done": turn.text = saved?.content ?? turn.text; turn.status = "complete"; break;
      case "turn.cancelled": turn.text = saved?.content ?? turn.text; turn.status = "cancelled"; break;
      case "turn.error": turn.text = saved?.content ?? turn.text; turn.status = "error"; turn.error = frame; break;
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
    if (endsTurn(frame)) this.#end(turn);
    else if (frame.type === "turn.started") this.#write(turn); // a reload right now must find it
    else if (turn.started) this.#save(turn);
    this.#onUpdate(turn, frame.type);
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
    saveRunningTurn(turn.turnId, { conversationId: turn.conversationId, seq: turn.seq, text: turn.text });
  }
}
