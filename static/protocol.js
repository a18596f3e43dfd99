// Rules both transports share: which frames end a turn, and how long to wait
// before trying the server again.

const TERMINAL = new Set(["turn.done", "turn.cancelled", "turn.error"]);

/** True for the one frame that ends a turn's stream. */
function isTerminal(frame) {
  return TERMINAL.has(frame.type);
}

/**
 * Exponential backoff, by default from 0.5 s to a 10 s cap, with jitter so
 * that many pages cut off by one server restart do not all come back in the
 * same instant.
 */
export function backoffDelay(attempt, { first = 500, cap = 10_000 } = {}) {
  const base = first * 2 ** Math.max(0, attempt - 1);
  return Math.min(cap, base * (0.8 + Math.random() * 0.4));
}

/**
 * The seq a turn has reached once `frame` is taken, or null when the frame
 * repeats one already had (a resume may repeat some; seq may skip numbers
 * where the server merged deltas). Never past what was received: a snapshot
 * stands for everything up to its seq, even one below ours (a resume from a
 * seq the turn never reached), and a terminal event is always taken (had we
 * seen it, we would not be following the turn).
 */
export function seqAfter(lastSeq, frame) {
  if (!frame.type.startsWith("turn.")) return lastSeq; // error frames carry no seq
  if (frame.type === "turn.snapshot") return frame.seq ?? lastSeq;
  if (isTerminal(frame)) return frame.seq ?? lastSeq;
  return frame.seq > lastSeq ? frame.seq : null;
}

/** Resolve after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * True when a frame means no more frames will come for its turn: a terminal
 * event, or an `error` about the turn (refused, unknown on resume). The one
 * exception is `turn_not_running`, the answer to a cancel that came too late:
 * the turn's own terminal event says how it ended.
 */
export function endsTurn(frame) {
  return isTerminal(frame) || (frame.type === "error" && frame.code !== "turn_not_running");
}
