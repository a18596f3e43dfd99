// Last-activity times for the sidebar: "5 min ago" to read, the exact time in
// the <time> element's datetime and title, so two conversations with the same
// title can be told apart.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A short English phrase for how long ago `date` was. */
export function relativeTime(date, now = Date.now()) {
  const ago = now - date.getTime();
  if (ago < MINUTE) return "just now"; // also a clock a little ahead of ours
  if (ago < HOUR) return `${Math.floor(ago / MINUTE)} min ago`;
  if (ago < DAY) return `${Math.floor(ago / HOUR)} h ago`;
  if (ago < 2 * DAY) return "yesterday";
  if (ago < 7 * DAY) return `${Math.floor(ago / DAY)} days ago`;
  const sameYear = date.getFullYear() === new Date(now).getFullYear();
  return date.toLocaleDateString(undefined, { day: "numeric", month: "short", ...(sameYear ? {} : { year: "numeric" }) });
}

/** Show the ISO time `iso` in the <time> element `node` (hidden without one). */
export function showTime(node, iso, now = Date.now()) {
  const date = new Date(iso ?? "");
  node.hidden = Number.isNaN(date.getTime());
  if (node.hidden) return;
  node.dateTime = date.toISOString();
  node.title = date.toLocaleString();
  node.textContent = relativeTime(date, now);
}
