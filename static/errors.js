// Error codes into sentences a person can act on. The service's codes are
// stable (see DESIGN.md); its own message is the fallback for the rest.

export const SESSION_EXPIRED = "Your session has expired or was rejected. Sign in again.";

function seconds(error) {
  const n = Number(error.retry_after ?? error.retryAfter ?? /(\d+(?:\.\d+)?)\s*s/.exec(error.message ?? "")?.[1]);
  return Number.isFinite(n) && n > 0 ? Math.ceil(n) : null;
}

const MESSAGES = {
  rate_limited: (e) => {
    const n = seconds(e);
    return n ? `The model is busy. Try again in ${n} second${n === 1 ? "" : "s"}.` : "The model is busy. Try again in a few seconds.";
  },
  conflict: () => "This conversation is already answering. Wait for it or press Stop.",
  input_too_long: () => "That message is too long for this conversation.",
  payload_too_large: () => "That message is too long to send.",
  too_many_turns: () => "Too many answers are running at once. Wait for one to finish.",
  upstream_unavailable: () => "The model service can't be reached right now. Try again in a moment.",
  upstream_error: () => "The model service failed to answer. Try again.",
  timeout: () => "The model took too long to answer. Try again.",
  unauthorized: () => SESSION_EXPIRED,
  not_found: () => "This conversation no longer exists.",
  network: () => "Can't reach the server. Check your connection; the page keeps trying.",
  disconnected: () => "Lost the connection to this answer. Retry picks it up where it stopped.",
  interrupted: () => "Interrupted: the service stopped before this answer was finished.",
};

/**
 * One sentence for an error frame ({code, message}), a turn.error
 * ({code, message, retryable}) or an ApiError ({code, detail}).
 */
export function describeError(error) {
  const known = MESSAGES[error?.code];
  if (known) return known(error);
  const text = error?.detail || error?.message;
  return text ? String(text) : "Something went wrong. Try again.";
}
