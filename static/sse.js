// The Server-Sent Events transport, for networks whose proxies break
// WebSockets. EventSource can neither POST nor send an Authorization header,
// so turns are read with fetch() and a small event-stream parser.
// Same interface as the WebSocket transport: startTurn, resume, cancel.

import { ApiError } from "./api.js";
import { backoffDelay, endsTurn, seqAfter, sleep } from "./protocol.js";

const GIVE_UP_AFTER = 8; // tries in a row that bring nothing new

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

  /**
   * Ask the service to stop a turn. A request that fails on the way (network,
   * 5xx, 429) is sent again with backoff, `onRetry()` telling the page so,
   * until the service answers: 202, or 404/409 when the turn already ended
   * (its terminal event says how). It stops trying once the turn's stream is over.
   */
  async cancel(turnId, onRetry = () => {}) {
    const path = `/api/turns/${encodeURIComponent(turnId)}/cancel`;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#api.send("POST", path);
        return;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if ([404, 409].includes(err.status)) return;
        if (err.status !== 0 && err.status !== 429 && err.status < 500) throw err; // resending cannot help
      }
      const stream = this.#streams.get(turnId);
      if (!stream) return; // the turn is over: nothing left to stop
      onRetry();
      await sleep(backoffDelay(attempt), stream.signal);
      if (stream.signal.aborted) return;
    }
  }

  #open(turnId, afterSeq, startBody, signal) {
    const headers = { Accept: "text/event-stream" };
    if (startBody) return this.#api.send("POST", "/api/turns", { body: startBody, headers, signal });
    headers["Last-Event-ID"] = String(afterSeq);
    return this.#api.send("GET", `/api/turns/${encodeURIComponent(turnId)}/events`, { headers, signal });
  }

  // Read one turn to its end. A dropped stream does not stop the turn on the
  // server, so re-attach from the last seq seen, with backoff. Only progress
  // (a newer event) resets the backoff: a stream that opens and ends with
  // nothing new counts as a failed try, and after GIVE_UP_AFTER of those in a
  // row the turn ends with a `disconnected` error the page offers to retry.
  async #follow(turnId, afterSeq, onEvent, startBody) {
    this.#streams.get(turnId)?.abort();
    const controller = new AbortController();
    this.#streams.set(turnId, controller);
    let lastSeq = afterSeq;
    let attempt = 0; // tries since the last progress
    let pendingStart = startBody; // until the server has surely seen the POST
    while (!controller.signal.aborted) {
      try {
        const response = await this.#open(turnId, lastSeq, pendingStart, controller.signal);
        this.#onStatus("sse");
        pendingStart = null;
        for await (const message of readEventStream(response.body)) {
          const frame = JSON.parse(message.data);
          const seq = seqAfter(lastSeq, frame);
          if (seq === null) continue; // a re-attach repeated what we have
          if (seq > lastSeq) attempt = 0;
          lastSeq = seq;
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
      if (attempt > GIVE_UP_AFTER) {
        this.#onStatus(navigator.onLine === false ? "offline" : "sse");
        onEvent({ type: "error", turn_id: turnId, code: "disconnected", message: "Lost the connection to this answer." });
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
