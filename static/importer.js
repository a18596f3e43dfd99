// Importing conversations from a file: one conversation's JSON export, or the
// JSON Lines of "export everything" (a document a line). Each document goes to
// POST /api/conversations/import as it is; the service checks it whole, so a
// refused one leaves nothing behind and the rest still come in.

import { describeError } from "./errors.js";

/**
 * input: the file <input>; status: where progress and the outcome are said.
 * onImported(conv, { only }) runs for each new conversation; `only` when the
 * file held just that one (the page then opens it).
 */
export class Importer {
  #api; #input; #status; #onImported;

  constructor({ api, input, status, onImported }) {
    this.#api = api;
    this.#input = input;
    this.#status = status;
    this.#onImported = onImported;
    input.addEventListener("change", () => {
      const [file] = input.files;
      input.value = ""; // the same file may be chosen again
      if (file) this.import(file);
    });
  }

  async import(file) {
    let documents;
    try {
      documents = documentsOf(await file.text());
    } catch (err) {
      this.#say(`${file.name}: ${err.message}`, "error");
      return;
    }
    const failures = [];
    let imported = 0;
    for (const [index, document] of documents.entries()) {
      this.#say(`Importing ${index + 1} of ${documents.length}…`, "busy");
      try {
        const conv = await this.#api.importConversation(document.value);
        imported += 1;
        this.#onImported(conv, { only: documents.length === 1 });
      } catch (err) {
        if (err.status === 401) return; // signed out: the sign-in screen says why
        failures.push(documents.length === 1 ? describeError(err) : `line ${document.line}: ${describeError(err)}`);
      }
    }
    const done = `Imported ${imported} conversation${imported === 1 ? "" : "s"}`;
    if (!failures.length) this.#say(`${done}.`, "done");
    else this.#say(`${done}; not imported: ${failures.join("; ")}`, "error");
  }

  #say(text, state) {
    this.#status.textContent = text;
    this.#status.dataset.state = state;
    this.#status.hidden = !text;
  }
}

/** [{line, value}]: the file as one JSON document, or one a line (JSON Lines). */
function documentsOf(text) {
  try {
    return [{ line: 1, value: JSON.parse(text) }];
  } catch { /* not one document: JSON Lines, or not JSON at all */ }
  const found = [];
  for (const [index, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    try {
      found.push({ line: index + 1, value: JSON.parse(line) });
    } catch {
      throw new Error(`line ${index + 1} is not JSON: choose a conversation's JSON export or an export of everything (.jsonl)`);
    }
  }
  if (!found.length) throw new Error("the file is empty");
  return found;
}
