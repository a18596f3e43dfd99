// What answers used and cost (protocol.md, `usage`): a quiet line under each
// answer, the conversation's running total in its header, how full its context
// is (the last answer's tokens against GET /api/models' context_tokens: beyond
// it, the oldest messages are left out), and what is left of the daily cost
// budget when the operator set one (GET /api/me, cost_budget).

const count = new Intl.NumberFormat(undefined);

/** "$0.0042": cents and below keep two significant digits, so small answers do not read $0.00. */
export function formatCost(usd) {
  if (!usd) return "$0";
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  return `$${usd.toPrecision(2).replace(/0+$/, "")}`;
}

/** "1,204 in · 2,150 cached · 96 out · $0.0019": cache reads shown, as they are most of a long chat. */
export function usageText(usage) {
  if (!usage) return "";
  const parts = [`${count.format(usage.input_tokens + usage.cache_creation_input_tokens)} in`];
  if (usage.cache_read_input_tokens) parts.push(`${count.format(usage.cache_read_input_tokens)} cached`);
  parts.push(`${count.format(usage.output_tokens)} out`);
  if (usage.web_search_requests) parts.push(`${usage.web_search_requests} searches`);
  parts.push(formatCost(usage.cost_usd));
  return parts.join(" · ");
}

/** The whole prompt and answer, for a tooltip: every field the service reports. */
export function usageTitle(usage) {
  return usage ? `Input ${usage.input_tokens}, cache write ${usage.cache_creation_input_tokens}, `
    + `cache read ${usage.cache_read_input_tokens}, output ${usage.output_tokens} tokens` : "";
}

/** The tokens the next turn sends at least: all this answer read and wrote. */
export function contextUsed(usage) {
  if (!usage) return 0;
  return usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens + usage.output_tokens;
}

/** The usage of the newest answer among a page of messages, oldest first (null: none). */
export function newestUsage(items) {
  return items.findLast((m) => m.role === "assistant" && m.usage)?.usage ?? null;
}

export class UsageView {
  #total;
  #budget;
  #api;
  #context; // { box, meter, text }
  #limit = 0; // context_tokens
  #used = 0;
  #shown = null; // the conversation id whose total is shown

  /** total: the header's span for the conversation's total; budget: the span for the budget
   * left; context: the gauge's box, <meter> and text. */
  constructor({ total, budget, api, context }) {
    this.#total = total;
    this.#budget = budget;
    this.#api = api;
    this.#context = context;
  }

  /** How much of a conversation a turn sends (GET /api/models, context_tokens). */
  contextLimit(tokens) {
    this.#limit = tokens || 0;
    this.#drawContext();
  }

  /** The usage of the newest answer on the branch shown (null: none yet). */
  contextOf(usage) {
    this.#used = contextUsed(usage);
    this.#drawContext();
  }

  #drawContext() {
    const { box, meter, text } = this.#context ?? {};
    if (!box) return;
    const shown = this.#limit > 0 && this.#used > 0;
    box.hidden = !shown;
    if (!shown) return;
    const share = Math.min(1, this.#used / this.#limit);
    meter.value = share;
    text.textContent = `${Math.round(share * 100)}% context`;
    box.title = `${count.format(this.#used)} of ${count.format(this.#limit)} tokens`
      + (share >= 1 ? ": the oldest messages are left out of what the model reads" : "");
  }

  /** The conversation shown now (null: a new chat), as the service last described it. */
  conversation(conv) {
    if ((conv?.id ?? null) !== this.#shown) this.contextOf(null);
    this.#shown = conv?.id ?? null;
    const usage = conv?.usage;
    const spent = usage && (usage.output_tokens || usage.cost_usd);
    this.#total.textContent = spent ? `This chat: ${usageText(usage)}` : "";
    this.#total.title = spent ? usageTitle(usage) : "";
    this.#total.hidden = !spent;
  }

  /** An answer ended: its conversation's total, its context and the budget changed. */
  async turnEnded(conversationId, usage) {
    if (conversationId === this.#shown && usage) this.contextOf(usage);
    const [conv] = await Promise.all([
      this.#api.getConversation(conversationId).catch(() => null),
      this.refreshBudget(),
    ]);
    if (conv && conv.id === this.#shown) this.conversation(conv);
  }

  async refreshBudget() {
    let me;
    try { me = await this.#api.me(); } catch { return; }
    const budget = me.cost_budget;
    this.#budget.hidden = !budget;
    this.#budget.textContent = budget ? `${formatCost(budget.cost_usd_remaining)} left today` : "";
    this.#budget.title = budget ? `Daily budget ${formatCost(budget.cost_usd_per_day)}, used ${formatCost(budget.cost_usd_used)}` : "";
  }
}
