// The open conversation's extended thinking setting, in the composer: a
// "Think first" switch and its token budget. An open conversation saves a
// change at once (PATCH); a new chat sends it with its first turn and saves it
// on the conversation that turn creates, so the next turns think too.

import { el } from "./inline.js";

// Below the service's default MAX_OUTPUT_TOKENS (4096): a budget must leave room for the answer.
const BUDGETS = [1024, 2048, 3072];
const DEFAULT_BUDGET = 2048;

export class ThinkingSetting {
  #toggle;
  #budget;
  #api;
  #onError;
  #conversationId = null;

  /** toggle: a checkbox; budget: a select; onError(err): a change could not be saved. */
  constructor({ toggle, budget, api, onError }) {
    this.#toggle = toggle;
    this.#budget = budget;
    this.#api = api;
    this.#onError = onError;
    budget.replaceChildren(...BUDGETS.map((n) => Object.assign(el("option", "", `${n / 1024}k tokens`), { value: String(n) })));
    budget.value = String(DEFAULT_BUDGET);
    toggle.addEventListener("change", () => this.#changed());
    budget.addEventListener("change", () => this.#changed());
    this.#show(null);
  }

  /** Show the setting of `conv` (null: a new chat, thinking off). */
  remember(conv) {
    this.#conversationId = conv?.id ?? null;
    this.#show(conv?.thinking ?? null);
  }

  /** The `thinking` to send with a turn that starts a new conversation (null: none). */
  forNewChat() {
    return this.#conversationId ? null : this.#value();
  }

  /** A new chat's first turn made conversation `id`: keep the setting it was sent with. */
  async adopt(id, thinking) {
    if (!thinking) return;
    try { await this.#api.updateConversation(id, { thinking }); } catch (err) { this.#onError(err); }
  }

  async #changed() {
    this.#show(this.#value());
    const id = this.#conversationId;
    if (!id) return; // a new chat: sent with its first turn
    try {
      const conv = await this.#api.updateConversation(id, { thinking: this.#value() });
      if (id === this.#conversationId) this.#show(conv.thinking ?? null);
    } catch (err) {
      this.#onError(err);
    }
  }

  #value() {
    return this.#toggle.checked ? { type: "enabled", budget_tokens: Number(this.#budget.value) } : null;
  }

  #show(thinking) {
    const on = thinking?.type === "enabled";
    this.#toggle.checked = on;
    if (on && thinking.budget_tokens) {
      const value = String(thinking.budget_tokens);
      if (![...this.#budget.options].some((o) => o.value === value)) this.#budget.append(Object.assign(el("option", "", `${value} tokens`), { value }));
      this.#budget.value = value;
    }
    this.#budget.hidden = !on;
  }
}
