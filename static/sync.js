// What changes on the user's other devices, shown here without a reload: a
// conversation created, renamed or archived elsewhere updates the sidebar, one
// deleted goes, a turn started elsewhere in the open conversation streams in.
// Pushed over the WebSocket; after a reconnect, what was missed meanwhile is
// asked for once (GET /api/sync since the last cursor). See docs/protocol.md,
// "Clients that come back".

export class Sync {
  #api;
  #onChanged;
  #onDeleted;
  #onRunning;
  #onExpired;
  #cursor = null; // the last sync's or push's; null until the first socket is ready
  #syncing = null;

  /**
   * onChanged(conv), onDeleted(id), onRunning(turn): apply one change.
   * onExpired(): the cursor was too old to catch up from: reload what is shown.
   */
  constructor({ api, onChanged, onDeleted, onRunning, onExpired }) {
    this.#api = api;
    this.#onChanged = onChanged;
    this.#onDeleted = onDeleted;
    this.#onRunning = onRunning;
    this.#onExpired = onExpired;
  }

  /** Signed out: forget the cursor (the next user starts afresh). */
  reset() {
    this.#cursor = null;
  }

  /**
   * A socket is ready: catch up on what was missed. After a drop, since the last
   * cursor; the first time, since the ready's own, which reaches 10 s back: a
   * change made between the list's first read and the socket's subscription
   * (pushes start only then) would otherwise never be shown.
   */
  ready(frame) {
    if (this.#cursor === null) this.#cursor = frame.cursor ?? null;
    if (this.#cursor !== null) this.#catchUp(frame.cursor ?? null);
  }

  push(frame) {
    this.#apply(frame);
    if (frame.cursor) this.#cursor = frame.cursor;
  }

  async #catchUp(fresh) {
    if (this.#syncing) return this.#syncing;
    this.#syncing = (async () => {
      try {
        const page = await this.#api.sync(this.#cursor);
        for (const conv of page.conversations) this.#onChanged(conv);
        for (const id of page.deleted) this.#onDeleted(id);
        for (const turn of page.running_turns) this.#onRunning(turn);
        this.#cursor = page.cursor;
      } catch (err) {
        if (err.code === "sync_expired") { this.#cursor = fresh; this.#onExpired(); }
        // Anything else: tried again on the next reconnect; pushes go on meanwhile.
      } finally {
        this.#syncing = null;
      }
    })();
    return this.#syncing;
  }

  #apply(frame) {
    if (frame.type === "conversation.changed") this.#onChanged(frame.conversation);
    else if (frame.type === "conversation.deleted") this.#onDeleted(frame.conversation_id);
    else if (frame.type === "turn.running") this.#onRunning(frame.turn);
  }
}
