// REST calls. Every failure becomes an ApiError carrying the service's
// problem+json fields (code, detail), so the page can say what went wrong in
// words; a 401 anywhere means the token is no good and the page must sign in.

export class ApiError extends Error {
  constructor(status, problem = {}, retryAfter = null) {
    super(problem.detail || problem.title || `Request failed (${status})`);
    this.status = status;
    this.code = problem.code || (status === 401 ? "unauthorized" : status === 0 ? "network" : `http_${status}`);
    this.detail = problem.detail || "";
    this.errors = problem.errors || null;
    this.retryAfter = problem.retry_after ?? retryAfter;
  }
}

async function problemOf(response) {
  try {
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? await response.json() : { detail: (await response.text()).slice(0, 300) };
  } catch {
    return {};
  }
}

/**
 * getToken() supplies the bearer token; onUnauthorized() runs on any 401 made
 * with it (not on a sign-in check that passes its own token).
 */
export function createApi({ getToken, onUnauthorized }) {
  async function send(method, path, { body, headers = {}, signal, token } = {}) {
    const bearer = token ?? getToken();
    const init = { method, signal, headers: { Accept: "application/json", ...headers } };
    if (bearer) init.headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, { detail: "Can't reach the server." });
    }
    if (response.ok) return response;
    const error = new ApiError(response.status, await problemOf(response), Number(response.headers.get("Retry-After")) || null);
    if (response.status === 401 && token === undefined) onUnauthorized();
    throw error;
  }

  async function json(method, path, options) {
    const response = await send(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  const conv = (id) => `/api/conversations/${encodeURIComponent(id)}`;

  return {
    send,
    devToken: (user) => json("POST", "/auth/dev-token", { body: { user }, token: "" }),
    me: (token) => json("GET", "/api/me", { token }),
    models: () => json("GET", "/api/models"),
    // filter: {archived, project, tag, unfiled}; empty ones (and unfiled: false) are left out.
    listConversations: (cursor, filter = {}) => {
      const query = { limit: "20", ...(cursor ? { cursor } : {}), ...filter, archived: String(Boolean(filter.archived)) };
      for (const [name, value] of Object.entries(query)) if (value === "" || value === false) delete query[name];
      return json("GET", `/api/conversations?${new URLSearchParams(query)}`);
    },
    projects: (archived) => json("GET", `/api/projects?${new URLSearchParams({ archived })}`),
    tags: (archived) => json("GET", `/api/tags?${new URLSearchParams({ archived })}`),
    getConversation: (id) => json("GET", conv(id)),
    importConversation: (document) => json("POST", "/api/conversations/import", { body: document }),
    updateConversation: (id, patch) => json("PATCH", conv(id), { body: patch }),
    deleteConversation: (id) => json("DELETE", conv(id)),
    search: (q, signal) => json("GET", `/api/search?${new URLSearchParams({ q, limit: "20" })}`, { signal }),
    sync: (since) => json("GET", `/api/sync${since ? `?${new URLSearchParams({ since })}` : ""}`),
    listMessages: (id, before) =>
      json("GET", `${conv(id)}/messages?${new URLSearchParams({ limit: "50", ...(before ? { before } : {}) })}`),
    rate: (messageId, body) => json("PUT", `/api/messages/${encodeURIComponent(messageId)}/feedback`, { body }),
    clearRating: (messageId) => json("DELETE", `/api/messages/${encodeURIComponent(messageId)}/feedback`),
  };
}
