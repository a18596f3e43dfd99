// A user message's files in the history: image thumbnails that open full size,
// PDFs as chips with their name and page count. The bytes need the token, so
// they are fetched as blobs (an <img src> cannot send an Authorization header).

import { pagesLabel } from "./attachments.js";
import { el } from "./inline.js";
import { getToken } from "./session.js";

const fetched = new Map(); // file_id -> Promise of an object URL, for the page's life

export function drawAttachments(container, blocks) {
  const files = (blocks ?? []).filter((b) => (b?.type === "image" || b?.type === "document") && b.file_id);
  container.replaceChildren();
  container.hidden = !files.length;
  for (const block of files) container.append(block.type === "image" ? thumbnail(block) : chip(block));
}

function thumbnail(block) {
  const link = el("a", "attachment-thumb-link");
  link.href = "#";
  link.dataset.testid = "history-attachment";
  link.setAttribute("aria-label", `Open ${block.name} full size`);
  const img = el("img", "attachment-thumb");
  img.alt = block.name;
  if (block.width && block.height) { img.width = block.width; img.height = block.height; }
  link.append(img);
  const url = block.preview ? Promise.resolve(block.preview) : objectUrl(block.file_id);
  url.then((src) => { img.src = src; }).catch(() => { img.alt = `${block.name} (unavailable)`; });
  link.addEventListener("click", async (e) => {
    e.preventDefault();
    try { openFull(await url, block.name); } catch { /* shown as unavailable */ }
  });
  return link;
}

function chip(block) {
  const node = el("span", "attachment-chip");
  node.dataset.testid = "history-attachment";
  node.append(el("span", "attachment-icon", "PDF"), el("span", "attachment-name", `${block.name} · ${pagesLabel(block.pages ?? 1)}`));
  return node;
}

function objectUrl(fileId) {
  if (!fetched.has(fileId)) {
    const url = fetch(`/api/files/${encodeURIComponent(fileId)}`, { headers: { Authorization: `Bearer ${getToken()}` } })
      .then((r) => { if (!r.ok) throw new Error(`${r.status}`); return r.blob(); })
      .then((blob) => URL.createObjectURL(blob));
    url.catch(() => fetched.delete(fileId));
    fetched.set(fileId, url);
  }
  return fetched.get(fileId);
}

function openFull(src, name) {
  const dialog = el("dialog", "dialog image-viewer");
  dialog.dataset.testid = "image-viewer";
  const img = el("img", "image-full");
  img.src = src;
  img.alt = name;
  const close = el("button", "image-close", "Close");
  close.type = "button";
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
  dialog.append(img, close);
  document.body.append(dialog);
  dialog.showModal();
}
