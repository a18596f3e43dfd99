// Picks the transport: the WebSocket by default, Server-Sent Events when
// asked (?transport=sse) or when the WebSocket cannot get through. The page
// talks to whichever is current through the same five calls.

import { SseTransport } from "./sse.js";
import { WsTransport } from "./ws.js";

/**
 * opts: api, getToken, onStatus(state), onUnauthorized(), onNotice(errorFrame).
 * States: "connecting", "connected", "reconnecting", "offline", "sse".
 */
export function createTransport(opts) {
  const useSse = () => new SseTransport({ api: opts.api, onStatus: opts.onStatus });
  const wanted = new URLSearchParams(location.search).get("transport");
  let current;
  if (wanted === "sse" || !("WebSocket" in window)) {
    current = useSse();
  } else {
    current = new WsTransport({
      ...opts,
      url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`,
      onUnreachable(pending) {
        current = useSse();
        current.connect();
        // Nothing reached the server yet: start or re-attach each turn over SSE.
        for (const turn of pending) {
          if (turn.start) current.startTurn(turn.start, turn.onEvent);
          else current.resume(turn.turnId, turn.lastSeq, turn.onEvent);
        }
      },
    });
  }
  return {
    get kind() { return current.kind; },
    connect: () => current.connect(),
    close: () => current.close(),
    startTurn: (request, onEvent) => current.startTurn(request, onEvent),
    resume: (turnId, afterSeq, onEvent) => current.resume(turnId, afterSeq, onEvent),
    cancel: (turnId) => current.cancel(turnId),
  };
}
