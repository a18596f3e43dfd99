// The WebSocket transport: one socket for all turns, authenticated by its
// first frame. A dropped socket does not stop a turn on the server, so after
// every reconnect each turn still running is re-attached with turn.resume
// from the last seq it saw. Changes made on the user's other devices are
// pushed on the same socket and handed to onPush; onReady says the socket is
// (again) ready, so the page can catch up on what it missed meanwhile.

import { backoffDelay, endsTurn, seqAfter } from "./protocol.js";

const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000; // a phone that changed networks keeps a dead socket "open"
const READY_WITHIN_MS = 10_000;
const PUSHES = new Set(["conversation.changed", "conversation.deleted", "turn.running"]);

export class WsTransport {
  #opts;
  #ws = null;
  #ready = false;
  #everReady = false;
  #closed = true;
  #attempt = 0;
  #timers = { retry: 0, ping: 0, watchdog: 0 };
  #turns = new Map(); // turn id -> {onEvent, lastSeq, start, sent, cancel}
  // Back online or back in view: try now rather than at the end of a backoff.
  #wake = () => {
    if (this.#closed || document.visibilityState === "hidden") return;
    if (!this.#ws) this.#open();
    else if (this.#ready) this.#opts.onStatus("connected");
  };
  // The network is gone, and the socket with it, even if it does not know yet.
  #offline = () => {
    if (this.#ws) this.#drop(this.#ws);
    else this.#opts.onStatus("offline");
  };

  /**
   * opts: url, getToken, onStatus, onUnauthorized, onNotice, onUnreachable(pendingTurns),
   * onReady(readyFrame), onPush(frame).
   */
  constructor(opts) {
    this.#opts = opts;
  }

  get kind() { return "ws"; }

  connect() {
    this.#closed = false;
    window.addEventListener("online", this.#wake);
    window.addEventListener("offline", this.#offline);
    document.addEventListener("visibilitychange", this.#wake);
    this.#opts.onStatus("connecting");
    this.#open();
  }

  close() {
    this.#closed = true;
    window.removeEventListener("online", this.#wake);
    window.removeEventListener("offline", this.#offline);
    document.removeEventListener("visibilitychange", this.#wake);
    this.#clearTimers();
    this.#ws?.close(1000);
    this.#ws = null;
    this.#turns.clear();
  }

  startTurn(request, onEvent) {
    const turn = { onEvent, lastSeq: 0, start: request, sent: false, cancel: false };
    this.#turns.set(request.turn_id, turn);
    if (this.#ready) this.#attach(request.turn_id, turn);
  }

  resume(turnId, afterSeq, onEvent) {
    const turn = { onEvent, lastSeq: afterSeq, start: null, sent: true, cancel: false };
    this.#turns.set(turnId, turn);
    if (this.#ready) this.#attach(turnId, turn);
  }

  async cancel(turnId) {
    const turn = this.#turns.get(turnId);
    if (turn) turn.cancel = true; // sent again after a reconnect, if need be
    this.#send({ type: "turn.cancel", turn_id: turnId });
  }

  #open() {
    clearTimeout(this.#timers.retry);
    let ws;
    try {
      ws = new WebSocket(this.#opts.url);
    } catch {
      // A policy (CSP, an extension, a locked-down webview) may refuse outright.
      ws = { close() {}, send() {} };
      this.#ws = ws;
      return void setTimeout(() => this.#onClose(ws, 1006), 0);
    }
    this.#ws = ws;
    this.#ready = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: this.#opts.getToken() }));
    ws.onmessage = (event) => { if (ws === this.#ws) this.#onFrame(event.data); };
    ws.onclose = (event) => this.#onClose(ws, event.code);
    // A proxy that swallows the upgrade never closes: give up after a while.
    this.#timers.watchdog = setTimeout(() => this.#drop(ws), READY_WITHIN_MS);
  }

  #send(frame) {
    if (!this.#ready) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  // Close a socket we no longer trust and move on at once, without waiting
  // for a close handshake that a dead network will never complete.
  #drop(ws) {
    ws.close();
    this.#onClose(ws, 1006);
  }

  #onFrame(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    clearTimeout(this.#timers.watchdog); // any frame proves the link is alive
    if (frame.type === "ready") return this.#onReady(frame);
    if (frame.type === "pong") return;
    if (PUSHES.has(frame.type)) return this.#opts.onPush?.(frame);
    if (frame.type === "error" && frame.code === "unauthorized") return this.#unauthorized();
    const turn = frame.turn_id ? this.#turns.get(frame.turn_id) : null;
    if (!turn) {
      // A late cancel's turn_not_running is no news: the turn has ended anyway.
      if (frame.type === "error" && frame.code !== "turn_not_running") this.#opts.onNotice(frame);
      return;
    }
    if (frame.type === "error" && frame.code === "not_found" && turn.start && turn.sent === "resumed") {
      // The turn.start we sent before the drop never arrived: send it now.
      turn.sent = true;
      this.#send({ type: "turn.start", ...turn.start });
      return;
    }
    const seq = seqAfter(turn.lastSeq, frame);
    if (seq === null) return; // already had it
    turn.lastSeq = seq;
    if (frame.type === "turn.started") turn.start = null;
    if (endsTurn(frame)) this.#turns.delete(frame.turn_id);
    turn.onEvent(frame);
  }

  #onReady(frame) {
    this.#ready = true;
    this.#everReady = true;
    this.#attempt = 0;
    this.#opts.onStatus("connected");
    this.#schedulePing();
    this.#opts.onReady?.(frame);
    for (const [turnId, turn] of this.#turns) this.#attach(turnId, turn);
  }

  #attach(turnId, turn) {
    if (turn.start && !turn.sent) {
      this.#send({ type: "turn.start", ...turn.start });
      turn.sent = true;
    } else {
      // Sent but never started: it may or may not have arrived; ask first.
      if (turn.start) turn.sent = "resumed";
      this.#send({ type: "turn.resume", turn_id: turnId, after_seq: turn.lastSeq });
    }
    if (turn.cancel) this.#send({ type: "turn.cancel", turn_id: turnId });
  }

  #schedulePing() {
    clearTimeout(this.#timers.ping);
    this.#timers.ping = setTimeout(() => {
      const ws = this.#ws;
      if (!this.#send({ type: "ping" })) return;
      this.#timers.watchdog = setTimeout(() => this.#drop(ws), PONG_WITHIN_MS);
      this.#schedulePing();
    }, PING_EVERY_MS);
  }

  #clearTimers() {
    for (const timer of Object.values(this.#timers)) clearTimeout(timer);
  }

  #unauthorized() {
    this.close();
    this.#opts.onUnauthorized();
  }

  #onClose(ws, code) {
    if (ws !== this.#ws) return; // an old socket we already left behind
    this.#clearTimers();
    this.#ws = null;
    this.#ready = false;
    if (this.#closed) return;
    if (code === 4401) return this.#unauthorized();
    this.#attempt += 1;
    if (!this.#everReady && this.#attempt >= 2) {
      // WebSockets do not get through from here: hand the turns to SSE.
      const pending = [...this.#turns].map(([turnId, t]) => ({ turnId, ...t }));
      this.close();
      this.#opts.onUnreachable(pending);
      return;
    }
    this.#opts.onStatus(navigator.onLine === false ? "offline" : "reconnecting");
    this.#timers.retry = setTimeout(() => this.#open(), backoffDelay(this.#attempt));
  }
}
