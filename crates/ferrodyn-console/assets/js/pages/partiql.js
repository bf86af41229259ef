// PartiQL editor: ExecuteStatement with optional parameters (DynamoDB JSON), results as typed
// cells, paging with NextToken.

import { h, field, errorBox, replace, status } from "../dom.js";
import { ddb } from "../api.js";
import { cell, columns } from "../ddbjson.js";

export async function render(main) {
  const [stmtField, stmt] = field("Statement", h("textarea", { id: "statement", rows: 6, spellcheck: "false", placeholder: 'SELECT * FROM "Orders" WHERE id = ?' }));
  const [paramsField, paramsText] = field("Parameters (JSON array of DynamoDB JSON values, optional)", h("textarea", { id: "parameters", rows: 2, spellcheck: "false", placeholder: '[{"S": "order-1"}]' }));
  stmtField.classList.add("wide");
  paramsField.classList.add("wide");
  const err = h("div", { class: "error-slot", id: "partiql-error" });
  const results = h("div", { id: "partiql-results" });
  let nextToken = null;
  let page = 0;

  const run = async (token) => {
    replace(err);
    const input = { Statement: stmt.value };
    if (paramsText.value.trim()) {
      try {
        input.Parameters = JSON.parse(paramsText.value);
      } catch (e) {
        replace(err, errorBox(Object.assign(new Error(`Parameters: ${e.message}`), { type: "InvalidJSON" })));
        return;
      }
    }
    if (token) input.NextToken = token;
    replace(results, status("Running…"));
    try {
      const out = await ddb("ExecuteStatement", input);
      page = token ? page + 1 : 1;
      nextToken = out.NextToken || null;
      show(out.Items || []);
    } catch (e) {
      replace(results);
      replace(err, errorBox(e));
    }
  };

  const show = (items) => {
    const cols = columns(items);
    replace(results,
      h("p", { class: "status", role: "status", id: "partiql-status", text: `Page ${page}: ${items.length} item${items.length === 1 ? "" : "s"}${nextToken ? ", more available" : ""}` }),
      items.length
        ? h("div", { class: "scroll" }, h("table", { class: "data" },
            h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", text: c })))),
            h("tbody", {}, items.map((it) => h("tr", {}, cols.map((c) => {
              if (!(c in it)) return h("td", {});
              const { type, text } = cell(it[c]);
              return h("td", {}, h("span", { class: `t t-${type}`, text: type }), h("span", { class: "cell", text }));
            })))),
          ))
        : null,
      h("div", { class: "actions" }, h("button", { type: "button", id: "partiql-next", text: "Next page", disabled: !nextToken, onclick: () => run(nextToken) })),
    );
  };

  main.append(
    h("h1", { text: "PartiQL" }),
    h("form", {
      class: "panel",
      "aria-label": "PartiQL statement",
      onsubmit: (ev) => {
        ev.preventDefault();
        run(null);
      },
    },
      h("div", { class: "row" }, stmtField),
      h("div", { class: "row" }, paramsField),
      h("p", { class: "hint", text: "Runs ExecuteStatement: SELECT, INSERT, UPDATE and DELETE as DynamoDB's PartiQL supports them. Ctrl+Enter runs." }),
      err,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "partiql-run", text: "Run" })),
    ),
    results,
  );
  stmt.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      run(null);
    }
  });
  stmt.focus();
}
