// Picks the transport: the WebSocket by default, Server-Sent Events when
// asked (?transport=sse) or when the WebSocket cannot get through. After such
// a fallback the WebSocket is tried again now and then (30 s, doubling to
// 5 min); once one reaches `ready`, new turns use it, while turns already
// streaming over SSE finish there. The page talks to whichever is current
// through the same five calls.

import { backoffDelay, endsTurn } from "./protocol.js";
import { SseTransport } from "./sse.js";
import { WsTransport } from "./ws.js";

const PROBE = { first: 30_000, cap: 5 * 60_000 };

/**
 * opts: api, getToken, onStatus(state), onUnauthorized(), onNotice(errorFrame),
 * onReady(readyFrame) and onPush(frame) (the WebSocket only: SSE has no pushes).
 * States: "connecting", "connected", "reconnecting", "offline", "sse".
 */
export function createTransport(opts) {
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
  const made = new Set(); // every live transport: close() must reach turns finishing on an old one
  const owners = new Map(); // turn id -> the transport carrying it (cancel goes there)
  let current = null;
  let probes = 0;
  let probeTimer = 0;

  // Only the current transport shows its state; a probe that says
  // "connected" has got through and becomes the current one.
  const create = (build) => {
    const transport = build((state) => {
      if (transport === current) opts.onStatus(state);
      else if (state === "connected") adopt(transport);
    });
    made.add(transport);
    return transport;
  };
  const newSse = () => create((onStatus) => new SseTransport({ api: opts.api, onStatus }));
  const newWs = (onUnreachable) => create((onStatus) => new WsTransport({ ...opts, url, onStatus, onUnreachable }));

  // WebSockets do not get through from here: carry on over SSE.
  function fallBack(pending) {
    current = newSse();
    current.connect();
    // Nothing reached the server yet: start or re-attach each turn over SSE.
    for (const turn of pending) {
      if (turn.start) startTurn(turn.start, turn.onEvent);
      else resume(turn.turnId, turn.lastSeq, turn.onEvent);
    }
    scheduleProbe();
  }

  function scheduleProbe() {
    probes += 1;
    probeTimer = setTimeout(() => {
      const probe = newWs(() => { made.delete(probe); scheduleProbe(); });
      probe.connect();
    }, backoffDelay(probes, PROBE));
  }

  function adopt(ws) {
    current = ws;
    probes = 0;
    opts.onStatus("connected");
  }

  // Ending frames free the turn's entry in `owners`.
  function carried(turnId, onEvent) {
    owners.set(turnId, current);
    return (frame) => {
      if (endsTurn(frame)) owners.delete(turnId);
      onEvent(frame);
    };
  }

  function startTurn(request, onEvent) {
    current.startTurn(request, carried(request.turn_id, onEvent));
  }

  function resume(turnId, afterSeq, onEvent) {
    current.resume(turnId, afterSeq, carried(turnId, onEvent));
  }

  const wanted = new URLSearchParams(location.search).get("transport");
  current = wanted === "sse" || !("WebSocket" in window) ? newSse() : newWs(fallBack);

  return {
    get kind() { return current.kind; },
    connect: () => current.connect(),
    close: () => {
      clearTimeout(probeTimer);
      for (const transport of made) transport.close();
      made.clear();
      owners.clear();
    },
    startTurn,
    resume,
    cancel: (turnId, onRetry) => (owners.get(turnId) ?? current).cancel(turnId, onRetry),
  };
}
