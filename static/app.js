// Wiring: finds the page's parts, signs in and out, routes #/c/<id> to the
// chat, and shows the connection state. The behaviour lives in the modules.

import { createApi } from "./api.js";
import { AttachmentTray } from "./attachments.js";
import { Chat } from "./chat.js";
import { describeError, SESSION_EXPIRED } from "./errors.js";
import { Importer } from "./importer.js";
import { Models } from "./models.js";
import { Search } from "./search.js";
import { clearSession, getToken, setToken } from "./session.js";
import { Sidebar } from "./sidebar.js";
import { ShareMenu } from "./share-menu.js";
import { setupSignIn } from "./signin.js";
import { Sync } from "./sync.js";
import { ThinkingSetting } from "./thinking-setting.js";
import { createTransport } from "./transport.js";
import { UsageView } from "./usage.js";

const $ = (id) => document.getElementById(id);
const CONNECTION = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  sse: "SSE",
};

let transport = null; // set while signed in

const api = createApi({ getToken, onUnauthorized: () => signOut(SESSION_EXPIRED) });
const sidebar = new Sidebar({
  api,
  parts: {
    root: $("sidebar"), list: $("conversation-list"), sentinel: $("conversations-sentinel"),
    status: $("conversations-status"), toggle: $("sidebar-toggle"), close: $("sidebar-close"), backdrop: $("backdrop"),
    dialog: $("delete-dialog"), fileDialog: $("file-dialog"),
    filters: { project: $("project-filter"), tag: $("tag-filter"), archived: $("archived-view"), heading: $("archived-heading") },
  },
  onGone: () => { location.hash = "#/"; },
});
const models = new Models({
  select: $("model-select"), label: $("model-name"), offlineNote: $("offline-note"), defaultModel: document.body.dataset.defaultModel,
});
const search = new Search({
  api,
  parts: { input: $("search-input"), results: $("search-results"), status: $("search-status"), conversations: $("conversations") },
  onOpen: () => sidebar.setOpen(false),
});
const thinking = new ThinkingSetting({
  toggle: $("thinking-toggle"), budget: $("thinking-budget"), api, onError: (err) => chat.notice(describeError(err)),
});
const usage = new UsageView({
  total: $("chat-usage"), budget: $("budget-left"), api,
  context: { box: $("chat-context"), meter: $("context-meter"), text: $("context-text") },
});
const attachments = new AttachmentTray({
  getToken,
  parts: {
    tray: $("attachment-tray"), button: $("attach"), input: $("attach-input"), camera: $("camera-input"),
    drop: $("composer"), paste: $("composer-input"),
  },
});
const chat = new Chat({
  api, sidebar, models, thinking, usage,
  parts: {
    attachments,
    title: $("chat-title"), form: $("composer"), input: $("composer-input"), stop: $("stop"),
    notice: $("composer-notice"), history: $("history-status"), messages: $("messages"),
    scroller: $("scroller"), jump: $("jump-latest"), topSentinel: $("history-sentinel"),
  },
});
// Changes made on the user's other devices, pushed or caught up after a reconnect.
const sync = new Sync({
  api,
  onChanged: (conv) => { sidebar.changed(conv); chat.conversationChanged(conv); },
  onDeleted: (id) => sidebar.deleted(id),
  onRunning: (turn) => chat.turnRunning(turn),
  onExpired: () => sidebar.reload(),
});
new ShareMenu({ api, menu: $("conv-menu"), dialog: $("share-dialog") });
new Importer({
  api, input: $("import-input"), status: $("import-status"),
  onImported: (conv, { only }) => {
    sidebar.changed(conv);
    if (only) { sidebar.setOpen(false); location.hash = `#/c/${encodeURIComponent(conv.id)}`; }
  },
});
const signIn = setupSignIn({
  api,
  parts: { form: $("signin-form"), message: $("signin-message") },
  onToken: (token) => { setToken(token); start(); },
});

function showConnection(state) {
  const indicator = $("connection");
  indicator.dataset.state = state;
  indicator.querySelector(".label").textContent = CONNECTION[state] ?? state;
}

function start() {
  $("signin-screen").hidden = true;
  $("chat-screen").hidden = false;
  transport = createTransport({
    api, getToken,
    onStatus: showConnection,
    onUnauthorized: () => signOut(SESSION_EXPIRED),
    onNotice: (frame) => chat.notice(describeError(frame)),
    onReady: (frame) => sync.ready(frame),
    onPush: (frame) => sync.push(frame),
  });
  transport.connect();
  chat.begin(transport);
  api.me().then((me) => { $("user-name").textContent = me.user_id; }, () => {});
  models.load(api).then((data) => usage.contextLimit(data?.context_tokens));
  usage.refreshBudget();
  sidebar.reload();
  route();
  chat.focusComposer();
}

function signOut(message = "") {
  if (!transport) return; // several calls may fail with 401 at once: sign out once
  transport.close();
  transport = null;
  chat.end();
  sync.reset();
  search.clear();
  clearSession();
  sidebar.setOpen(false);
  $("user-name").textContent = "";
  history.replaceState(null, "", location.pathname + location.search); // the next user starts afresh
  $("chat-screen").hidden = true;
  $("signin-screen").hidden = false;
  signIn.show(message);
}

function route() {
  if (!transport) return;
  const match = /^#\/c\/(.+)$/.exec(location.hash);
  chat.open(match ? decodeURIComponent(match[1]) : null);
}

window.addEventListener("hashchange", route);
$("sign-out").addEventListener("click", () => signOut());
$("new-chat").addEventListener("click", () => {
  sidebar.setOpen(false);
  if (/^#\/c\//.test(location.hash)) location.hash = "#/"; // hashchange opens it
  else chat.open(null);
  chat.focusComposer();
});

if (getToken()) start();
else { $("signin-screen").hidden = false; signIn.show(); }
