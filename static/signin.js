// The sign-in screen. With dev sign-in a name is enough (POST /auth/dev-token);
// otherwise the reader pastes a token, checked with GET /api/me before use.

import { describeError } from "./errors.js";

/** parts: form, message; onToken(token) runs once a token is known good. */
export function setupSignIn({ api, parts, onToken }) {
  const { form, message } = parts;
  const button = form.querySelector("button[type=submit]");
  const say = (text) => { message.textContent = text; message.hidden = !text; };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = form.elements.namedItem("credential");
    const value = field.value.trim();
    if (!value) { say(form.dataset.mode === "dev" ? "Enter your name." : "Paste a token."); field.focus(); return; }
    button.disabled = true;
    say("");
    try {
      let token = value;
      if (form.dataset.mode === "dev") token = (await api.devToken(value)).token;
      else await api.me(token);
      onToken(token);
    } catch (err) {
      say(err.status === 401 ? "That token was rejected. Check it and try again." : describeError(err));
      field.focus();
    } finally {
      button.disabled = false;
    }
  });

  return {
    /** Show the screen, with `text` explaining why if given. */
    show(text = "") {
      say(text);
      form.reset();
      form.elements.namedItem("credential").focus();
    },
  };
}
