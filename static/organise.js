// Filing conversations from the sidebar: the filter bar (project, tag, the
// Archived view) and the small dialog that asks for a row's tags or project.

import { el } from "./inline.js";

const TAG_SEPARATOR = ",";
const NO_PROJECT = "\u0000unfiled"; // the project select's "No project": no name can be it

/**
 * parts: project, tag (selects), archived (a toggle button), heading.
 * onChange(filter) runs when the reader picks another view.
 */
export class Filters {
  #api;
  #parts;
  #onChange;
  filter = { archived: false, project: "", tag: "", unfiled: false };

  constructor({ api, parts, onChange }) {
    this.#api = api;
    this.#parts = parts;
    this.#onChange = onChange;
    parts.project.addEventListener("change", () => {
      const unfiled = parts.project.value === NO_PROJECT;
      this.#set({ project: unfiled ? "" : parts.project.value, unfiled });
    });
    parts.tag.addEventListener("change", () => this.#set({ tag: parts.tag.value }));
    parts.archived.addEventListener("click", () =>
      this.#set({ archived: !this.filter.archived, project: "", tag: "", unfiled: false }));
  }

  /** Whether `conv` belongs in the list as filtered now. */
  shows(conv) {
    const { archived, project, tag, unfiled } = this.filter;
    return Boolean(conv.archived) === archived
      && (!project || conv.project === project)
      && (!unfiled || !conv.project)
      && (!tag || (conv.tags ?? []).includes(tag));
  }

  /** The projects and tags to offer, counted for the current view. */
  async refresh() {
    const archived = String(this.filter.archived);
    try {
      const [projects, tags] = await Promise.all([this.#api.projects(archived), this.#api.tags(archived)]);
      this.projects = projects.items.map((p) => p.name);
      const chosen = this.filter.unfiled ? NO_PROJECT : this.filter.project;
      fill(this.#parts.project, "Projects", projects.items, chosen, [new Option("No project", NO_PROJECT)]);
      fill(this.#parts.tag, "Tags", tags.items, this.filter.tag);
    } catch { /* the filters keep what they offered; the list says what failed */ }
  }

  /** A project or tag the selects do not offer yet (filed on another device). */
  offers(conv) {
    const has = (select, value) => [...select.options].some((o) => o.value === value);
    return (!conv.project || has(this.#parts.project, conv.project))
      && (conv.tags ?? []).every((t) => has(this.#parts.tag, t));
  }

  #set(change) {
    this.filter = { ...this.filter, ...change };
    const { archived, heading } = this.#parts;
    archived.setAttribute("aria-pressed", String(this.filter.archived));
    heading.hidden = !this.filter.archived;
    this.#onChange(this.filter);
  }
}

function fill(select, all, items, chosen, extra = []) {
  const options = [new Option(all, "")];
  for (const { name, count } of items) options.push(new Option(`${name} (${count})`, name));
  options.push(...extra);
  if (chosen && !options.some((o) => o.value === chosen)) options.push(new Option(chosen, chosen));
  select.replaceChildren(...options);
  select.value = chosen;
}

/**
 * Ask for a row's tags (comma-separated) or project in `dialog`; resolves to the
 * PATCH body, or null when cancelled.
 */
export async function askToFile(dialog, { kind, conv, projects = [] }) {
  const tags = kind === "tags";
  const input = dialog.querySelector("input");
  const choices = dialog.querySelector("datalist");
  dialog.querySelector("h2").textContent = tags ? "Tags" : "Move to project";
  dialog.querySelector("label").textContent = tags ? "Tags, separated by commas" : "Project (empty: none)";
  dialog.querySelector("[data-hint]").textContent = tags
    ? "At most 20 tags of 40 characters; stored in lower case."
    : "At most 100 characters.";
  input.value = tags ? (conv.tags ?? []).join(", ") : conv.project ?? "";
  input.maxLength = tags ? 900 : 100;
  choices.replaceChildren(...(tags ? [] : projects).map((name) => Object.assign(el("option"), { value: name })));
  dialog.returnValue = "";
  dialog.showModal();
  input.select();
  const answer = await new Promise((resolve) =>
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  if (answer !== "save") return null;
  if (!tags) return { project: input.value.trim() || null };
  return { tags: input.value.split(TAG_SEPARATOR).map((t) => t.trim()).filter(Boolean) };
}
