// The conversation's Export and Share menu: downloads (Markdown of the branch
// shown, or the portable JSON of the whole tree) and share links (create, copy,
// list, revoke). A link's token is shown once, when it is made: the service
// keeps only its hash, so the list can revoke links but not show them again.

import { copyText } from "./markdown.js";
import { el } from "./inline.js";

const conv = (id) => `/api/conversations/${encodeURIComponent(id)}`;

/** The conversation open now (#/c/<id>), or null on a new chat. */
function currentId() {
  const match = /^#\/c\/(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function fileName(response, fallback) {
  const found = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return found ? found[1] : fallback;
}

export class ShareMenu {
  #api; #menu; #dialog; #status;

  /** menu: the <details> in the conversation's header; dialog: the share <dialog>. */
  constructor({ api, menu, dialog }) {
    this.#api = api;
    this.#menu = menu;
    this.#dialog = dialog;
    this.#status = dialog.querySelector("[data-status]");
    menu.addEventListener("toggle", () => this.#refresh());
    // A menu closes when a click or Escape goes elsewhere, as menus do.
    document.addEventListener("click", (event) => { if (menu.open && !menu.contains(event.target)) menu.open = false; });
    menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
    });
    for (const button of menu.querySelectorAll("[data-export]")) {
      button.addEventListener("click", () => this.#export(button.dataset.export));
    }
    menu.querySelector("[data-share]").addEventListener("click", () => this.#openDialog());
    dialog.querySelector("[data-create]").addEventListener("click", () => this.#create());
    dialog.querySelector("[data-copy]").addEventListener("click", async (event) => {
      const ok = await copyText(dialog.querySelector("[data-url]").value);
      event.target.textContent = ok ? "Copied" : "Copy failed";
    });
  }

  #refresh() {
    const none = currentId() === null;
    for (const button of this.#menu.querySelectorAll("button")) button.disabled = none;
    this.#menu.querySelector("[data-hint]").hidden = !none;
  }

  async #export(format) {
    const id = currentId();
    this.#menu.open = false;
    if (!id) return;
    try {
      const response = await this.#api.send("GET", `${conv(id)}/export?format=${format}`);
      const link = el("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = fileName(response, `conversation.${format === "json" ? "json" : "md"}`);
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (err) {
      this.#say(`Export failed: ${err.message}`);
    }
  }

  #openDialog() {
    this.#menu.open = false;
    this.#dialog.querySelector("[data-new]").hidden = true;
    this.#say("");
    this.#dialog.showModal();
    this.#list();
  }

  async #create() {
    const id = currentId();
    if (!id) return;
    try {
      const share = await (await this.#api.send("POST", `${conv(id)}/shares`)).json();
      const box = this.#dialog.querySelector("[data-new]");
      box.hidden = false;
      box.querySelector("[data-url]").value = share.url;
      box.querySelector("[data-copy]").textContent = "Copy";
      box.querySelector("[data-url]").select();
      await this.#list();
    } catch (err) {
      this.#say(`Could not create a link: ${err.message}`);
    }
  }

  async #list() {
    const id = currentId();
    const list = this.#dialog.querySelector("[data-list]");
    if (!id) return;
    try {
      const { items } = await (await this.#api.send("GET", `${conv(id)}/shares`)).json();
      list.replaceChildren(...items.map((share) => this.#row(share)));
      if (!items.length) list.append(el("li", "hint", "No links yet."));
    } catch (err) {
      this.#say(`Could not list the links: ${err.message}`);
    }
  }

  #row(share) {
    const row = el("li", "share-row");
    row.dataset.testid = "share-row";
    const made = new Date(share.created_at).toLocaleString();
    const revoke = el("button", "danger", "Revoke");
    revoke.type = "button";
    revoke.setAttribute("aria-label", `Revoke the link made ${made}`);
    revoke.addEventListener("click", async () => {
      try {
        await this.#api.send("DELETE", `/api/shares/${encodeURIComponent(share.id)}`);
        this.#dialog.querySelector("[data-new]").hidden = true;
        this.#say("Link revoked: it no longer opens.");
        await this.#list();
      } catch (err) {
        this.#say(`Could not revoke: ${err.message}`);
      }
    });
    row.append(el("span", "", `Link made ${made}`), revoke);
    return row;
  }

  #say(text) {
    this.#status.textContent = text;
    this.#status.hidden = !text;
  }
}
