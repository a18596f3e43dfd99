// The Server-Sent Events transport, for networks whose proxies break
// WebSockets. EventSource can neither POST nor send an Authorization header,
// so turns are read with fetch() and a small event-stream parser.
// Same interface as the WebSocket transport: startTurn, resume, cancel.

import { ApiError } from "./api.js";
import { backoffDelay, endsTurn, sleep } from "./protocol.js";

const MAX_REATTACH = 8;

/** Yield {event, id, data} for each event in a text/event-stream body. */
export async function* readEventStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let id = null;
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (;;) {
        const nl = buffer.search(/[\r\n]/);
        // A "\r" at the very end may be the first half of "\r\n": wait for more.
        if (nl === -1 || (buffer[nl] === "\r" && nl === buffer.length - 1)) break;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? 2 : 1));
        if (line === "") {
          if (data.length) yield { event: event || "message", id, data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue; // keep-alive comment
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const val = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = val;
        else if (field === "data") data.push(val);
        else if (field === "id") id = val;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

export class SseTransport {
  #api;
  #onStatus;
  #streams = new Map(); // turn id -> AbortController

  constructor({ api, onStatus }) {
    this.#api = api;
    this.#onStatus = onStatus;
  }

  get kind() { return "sse"; }

  connect() { this.#onStatus("sse"); }

  close() {
    for (const controller of this.#streams.values()) controller.abort();
    this.#streams.clear();
  }

  startTurn(request, onEvent) {
    const { type: _type, ...body } = request;
    this.#follow(request.turn_id, 0, onEvent, body);
  }

  resume(turnId, afterSeq, onEvent) {
    this.#follow(turnId, afterSeq, onEvent, null);
  }

  async cancel(turnId) {
    try {
      await this.#api.send("POST", `/api/turns/${encodeURIComponent(turnId)}/cancel`);
    } catch (err) {
      // 404/409: the turn already ended; its terminal event says how.
      if (!(err instanceof ApiError) || ![404, 409].includes(err.status)) throw err;
    }
  }

  #open(turnId, afterSeq, startBody, signal) {
    const headers = { Accept: "text/event-stream" };
    if (startBody) return this.#api.send("POST", "/api/turns", { body: startBody, headers, signal });
    headers["Last-Event-ID"] = String(afterSeq);
    return this.#api.send("GET", `/api/turns/${encodeURIComponent(turnId)}/events`, { headers, signal });
  }

  // Read one turn to its end. A dropped stream does not stop the turn on the
  // server, so re-attach from the last seq seen, with backoff.
  async #follow(turnId, afterSeq, onEvent, startBody) {
    this.#streams.get(turnId)?.abort();
    const controller = new AbortController();
    this.#streams.set(turnId, controller);
    let lastSeq = afterSeq;
    let attempt = 0;
    let pendingStart = startBody; // until the server has surely seen the POST
    while (!controller.signal.aborted) {
      try {
        const response = await this.#open(turnId, lastSeq, pendingStart, controller.signal);
        if (attempt) this.#onStatus("sse");
        attempt = 0;
        pendingStart = null;
        for await (const message of readEventStream(response.body)) {
          const frame = JSON.parse(message.data);
          // After a re-attach the server may repeat what we have; skip it.
          if (frame.type !== "turn.snapshot" && frame.seq <= lastSeq) continue;
          lastSeq = Math.max(lastSeq, frame.seq ?? 0);
          onEvent(frame);
          if (endsTurn(frame)) return this.#done(turnId, controller);
        }
      } catch (err) {
        if (controller.signal.aborted) return;
        if (err instanceof ApiError && err.status !== 0) {
          // The re-attach found no such turn: the POST never arrived; send it again.
          if (err.status === 404 && startBody && lastSeq === 0 && !pendingStart) { pendingStart = startBody; continue; }
          // Refused before the stream opened: report it the way a WS error frame would.
          if (err.status !== 401) onEvent({ type: "error", turn_id: turnId, code: err.code, message: err.detail, retry_after: err.retryAfter });
          return this.#done(turnId, controller);
        }
        // A network error on the POST: it may have arrived, so re-attach rather than start twice.
        if (pendingStart && err instanceof ApiError) pendingStart = null;
      }
      attempt += 1;
      if (attempt > MAX_REATTACH) {
        onEvent({ type: "error", turn_id: turnId, code: "network", message: "Lost the connection to the server." });
        return this.#done(turnId, controller);
      }
      this.#onStatus(navigator.onLine === false ? "offline" : "reconnecting");
      await sleep(backoffDelay(attempt), controller.signal);
    }
  }

  #done(turnId, controller) {
    if (this.#streams.get(turnId) === controller) this.#streams.delete(turnId);
  }
}
