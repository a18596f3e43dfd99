// What one tab remembers across reloads: the token and the turns it was
// watching. sessionStorage, not localStorage: each tab signs in on its own
// and a closed tab forgets the token.

const TOKEN_KEY = "chat.token";
const TURNS_KEY = "chat.turns";

function read(key, fallback) {
  try { return JSON.parse(sessionStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}

function write(key, value) {
  try { sessionStorage.setItem(key, JSON.stringify(value)); } catch { /* storage full or off: not fatal */ }
}

export function getToken() {
  return read(TOKEN_KEY, null);
}

export function setToken(token) {
  write(TOKEN_KEY, token);
}

/** Forget everything this tab knew about the signed-in user. */
export function clearSession() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TURNS_KEY);
}

/**
 * Running turns by turn id: {conversationId, seq, text}. `text` is the answer
 * up to `seq`, so a reloaded page can resume after `seq` and lose nothing.
 */
export function runningTurns() {
  return read(TURNS_KEY, {});
}

export function saveRunningTurn(turnId, state) {
  const turns = runningTurns();
  turns[turnId] = state;
  write(TURNS_KEY, turns);
}

export function forgetRunningTurn(turnId) {
  const turns = runningTurns();
  if (!(turnId in turns)) return;
  delete turns[turnId];
  write(TURNS_KEY, turns);
}
