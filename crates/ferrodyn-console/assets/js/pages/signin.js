// Sign-in: an access key id and secret (and region, optional session token) for servers that
// enforce keys. They are checked with one signed ListTables and kept in sessionStorage only.

import { h, field, errorBox, replace } from "../dom.js";
import { call, saveSession, clearSession } from "../api.js";

export async function render(main, ctx) {
  const [idField, id] = field("Access key id", h("input", { name: "accessKeyId", autocomplete: "username", required: true, spellcheck: "false" }));
  const [secretField, secret] = field("Secret access key", h("input", { type: "password", name: "secretAccessKey", autocomplete: "current-password", required: true }));
  const [regionField, region] = field("Region", h("input", { name: "region", value: "us-east-1", required: true }));
  const [tokenField, token] = field("Session token (optional)", h("input", { type: "password", name: "sessionToken", autocomplete: "off" }));
  const err = h("div", { class: "error-slot" });
  const button = h("button", { type: "submit", class: "primary", text: "Sign in" });
  const form = h(
    "form",
    {
      class: "panel signin",
      "aria-labelledby": "signin-title",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const creds = {
          accessKeyId: id.value.trim(),
          secretAccessKey: secret.value,
          region: region.value.trim() || "us-east-1",
        };
        if (token.value) creds.sessionToken = token.value;
        button.disabled = true;
        replace(err);
        try {
          await call("DynamoDB_20120810.ListTables", { Limit: 1 }, creds);
          saveSession(creds);
          ctx.onSession();
          ctx.go("tables");
        } catch (e) {
          // An authenticated key without ListTables still signs in: it may be allowed elsewhere.
          if (e.type === "AccessDeniedException") {
            saveSession(creds);
            ctx.onSession();
            ctx.go("tables");
            return;
          }
          clearSession();
          replace(err, errorBox(e));
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { id: "signin-title", text: "Sign in" }),
    h("p", { class: "muted", text: "This server enforces access keys. Requests from the console are signed with SigV4 in this browser tab and authorized like any SDK request. The secret stays in this tab's session storage." }),
    idField,
    secretField,
    regionField,
    tokenField,
    err,
    h("div", { class: "actions" }, button),
  );
  main.appendChild(form);
  id.focus();
}
