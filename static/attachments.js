// Files attached to the next message: picked, dropped or pasted, uploaded at
// once with a progress bar (XMLHttpRequest: fetch reports no upload progress),
// shown as thumbnails (images) or chips (PDFs) with × to remove. A refused file
// says why, inline, and is never sent.

import { el } from "./inline.js";

export const ACCEPT = "image/png,image/jpeg,image/gif,image/webp,application/pdf";
const MAX_FILES = 20;

export class AttachmentTray {
  #items = [];
  #tray;
  #getToken;
  #onChange;

  /** parts: tray, button, input, camera (input with `capture`), drop (where files may be dropped), paste (the textarea). */
  constructor({ parts, getToken, onChange = () => {} }) {
    this.#tray = parts.tray;
    this.#getToken = getToken;
    this.#onChange = onChange;
    parts.input.accept = ACCEPT;
    parts.button.addEventListener("click", () => parts.input.click());
    for (const input of [parts.input, parts.camera]) {
      input.addEventListener("change", () => { this.add([...input.files]); input.value = ""; });
    }
    parts.drop.addEventListener("dragover", (e) => {
      if (![...(e.dataTransfer?.types ?? [])].includes("Files")) return;
      e.preventDefault();
      parts.drop.classList.add("dropping");
    });
    parts.drop.addEventListener("dragleave", () => parts.drop.classList.remove("dropping"));
    parts.drop.addEventListener("drop", (e) => {
      if (!e.dataTransfer?.files?.length) return;
      e.preventDefault();
      parts.drop.classList.remove("dropping");
      this.add([...e.dataTransfer.files]);
    });
    parts.paste.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (!files.length) return;
      e.preventDefault();
      this.add(files);
    });
  }

  /** Upload each file; beyond 20 a message, the rest are refused here. */
  add(files) {
    for (const file of files) {
      const item = { file, id: null, meta: null, status: "uploading", progress: 0, error: "", node: null };
      if (this.#items.filter((i) => i.status !== "error").length >= MAX_FILES) {
        Object.assign(item, { status: "error", error: `At most ${MAX_FILES} files a message.` });
      }
      this.#items.push(item);
      this.#draw(item);
      if (item.status === "uploading") this.#upload(item);
    }
    this.#onChange();
  }

  /** The uploaded files' ids, in order. */
  ids() { return this.#items.filter((i) => i.status === "ready").map((i) => i.id); }

  /** The references the sent message shows until the service's copy arrives. */
  blocks() {
    return this.#items.filter((i) => i.status === "ready").map((i) => ({
      type: i.meta.media_type === "application/pdf" ? "document" : "image",
      file_id: i.id, media_type: i.meta.media_type, name: i.meta.name,
      ...(i.meta.pages ? { pages: i.meta.pages } : { width: i.meta.width, height: i.meta.height }),
      preview: i.preview,
    }));
  }

  uploading() { return this.#items.some((i) => i.status === "uploading"); }

  /** After a send: the tray empties (the files now belong to the message). */
  clear() {
    this.#items = [];
    this.#tray.replaceChildren();
    this.#tray.hidden = true;
    this.#onChange();
  }

  #upload(item) {
    const request = new XMLHttpRequest();
    const body = new FormData();
    body.append("file", item.file, item.file.name);
    request.open("POST", "/api/files");
    request.setRequestHeader("Authorization", `Bearer ${this.#getToken()}`);
    request.responseType = "json";
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) { item.progress = e.loaded / e.total; this.#draw(item); }
    });
    request.addEventListener("load", () => {
      const reply = request.response ?? {};
      if (request.status === 201) Object.assign(item, { status: "ready", id: reply.id, meta: reply, progress: 1 });
      else Object.assign(item, { status: "error", error: reply.detail || `The upload failed (${request.status}).` });
      this.#draw(item);
      this.#onChange();
    });
    request.addEventListener("error", () => {
      Object.assign(item, { status: "error", error: "The upload failed: can't reach the server." });
      this.#draw(item);
      this.#onChange();
    });
    item.request = request;
    request.send(body);
  }

  #remove(item) {
    item.request?.abort();
    this.#items = this.#items.filter((i) => i !== item);
    item.node?.remove();
    if (item.preview) URL.revokeObjectURL(item.preview);
    this.#tray.hidden = !this.#items.length;
    this.#onChange();
  }

  #draw(item) {
    const isImage = item.file.type.startsWith("image/");
    if (!item.node) {
      item.node = el("div", `attachment ${isImage ? "attachment-image" : "attachment-file"}`);
      item.node.dataset.testid = "attachment";
      if (isImage) {
        item.preview = URL.createObjectURL(item.file);
        const img = el("img", "attachment-thumb");
        img.src = item.preview;
        img.alt = item.file.name;
        item.node.append(img);
      } else {
        item.node.append(el("span", "attachment-icon", "PDF"));
      }
      const label = el("span", "attachment-name", item.file.name);
      const remove = el("button", "attachment-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${item.file.name}`);
      remove.addEventListener("click", () => this.#remove(item));
      const bar = el("progress", "attachment-progress");
      bar.max = 1;
      item.node.append(label, remove, bar, el("span", "attachment-error"));
      item.node.querySelector(".attachment-error").setAttribute("role", "alert");
      this.#tray.append(item.node);
      this.#tray.hidden = false;
    }
    item.node.dataset.status = item.status;
    const bar = item.node.querySelector("progress");
    bar.value = item.progress;
    bar.hidden = item.status !== "uploading";
    item.node.querySelector(".attachment-error").textContent = item.error;
    if (item.meta?.pages && !item.node.querySelector(".attachment-pages")) {
      item.node.querySelector(".attachment-name").after(el("span", "attachment-pages", pagesLabel(item.meta.pages)));
    }
  }
}

export function pagesLabel(pages) {
  return `${pages} page${pages === 1 ? "" : "s"}`;
}
