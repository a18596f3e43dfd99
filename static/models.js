// The model picker: the service's allowlist in a <select>, shown only when
// there is a choice. A turn names a model only when the reader picked one
// other than the conversation's, so the service's default stays in charge.
// With no API key the service offers only its offline stand-in: the page says
// what that is and how to switch to Claude.

import { el } from "./inline.js";

const OFFLINE_MODEL = "offline"; // the service's name for its stand-in (no ANTHROPIC_API_KEY)

export class Models {
  #select;
  #label;
  #fallback;
  #base; // the model the open conversation uses without a choice
  #offlineNote;

  constructor({ select, label, offlineNote, defaultModel }) {
    this.#select = select;
    this.#label = label;
    this.#offlineNote = offlineNote;
    this.#fallback = defaultModel;
    this.#base = defaultModel;
    select.addEventListener("change", () => this.#showLabel(select.value));
    this.#showLabel(defaultModel);
  }

  /** Fill the picker from GET /api/models; without it, the default is shown. */
  async load(api) {
    let data;
    try { data = await api.models(); } catch { return null; }
    const ids = (data.models ?? data.items ?? []).map((m) => (typeof m === "string" ? m : m.id ?? m.name)).filter(Boolean);
    this.#fallback = data.default ?? data.default_model ?? this.#fallback;
    this.#select.replaceChildren(...ids.map((id) => Object.assign(el("option", "", id), { value: id })));
    this.#select.hidden = ids.length < 2;
    this.#offlineNote.hidden = !(ids.length === 1 && ids[0] === OFFLINE_MODEL);
    this.remember(null);
    return data;
  }

  /** Show the model of `conv` (null: a new chat gets the default). */
  remember(conv) {
    this.#base = conv?.model || this.#fallback;
    if ([...this.#select.options].some((o) => o.value === this.#base)) this.#select.value = this.#base;
    this.#showLabel(this.#base);
  }

  #showLabel(model) {
    const offline = model === OFFLINE_MODEL;
    this.#label.textContent = offline ? "Offline model (not Claude)" : model;
    this.#label.title = offline ? "Set ANTHROPIC_API_KEY and restart the service to talk to Claude" : "Model";
  }

  /** The model to name in turn.start, or null to leave it to the service. */
  selected() {
    if (this.#select.hidden || !this.#select.value) return null;
    return this.#select.value === this.#base ? null : this.#select.value;
  }
}
