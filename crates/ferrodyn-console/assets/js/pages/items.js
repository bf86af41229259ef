// Items: browse a table or index with Scan or Query (key conditions, filter, projection,
// direction, page size, paging both ways), results as a table of typed cells, and an editor
// that views, creates, replaces (PutItem) and deletes (DeleteItem) one item in DynamoDB JSON or
// plain JSON. The server's errors are shown inline with their type and message.

import { h, field, select, errorBox, replace, status } from "../dom.js";
import { ddb, listAllTables } from "../api.js";
import { cell, columns, formatItem, itemToPlain, plainToItem } from "../ddbjson.js";

const SORT_OPS = [["", "(none)"], ["=", "="], ["<", "<"], ["<=", "<="], [">", ">"], [">=", ">="], ["between", "between"], ["begins_with", "begins with"]];

export async function render(main, ctx) {
  let names;
  try {
    names = await listAllTables();
  } catch (e) {
    main.append(h("h1", { text: "Items" }), errorBox(e));
    return;
  }
  const tableName = ctx.params.get("table") || names[0] || "";
  const [tableField, tableSel] = field("Table", select(names.length ? names : [["", "(no tables)"]], tableName, { id: "items-table" }));
  tableSel.addEventListener("change", () => ctx.go("items", { table: tableSel.value }));
  main.append(h("div", { class: "row" }, h("h1", { text: "Items" }), tableField));
  if (!tableName) {
    main.appendChild(h("p", { class: "panel muted", text: "No tables yet: create one on the Tables page." }));
    return;
  }
  let desc;
  try {
    desc = (await ddb("DescribeTable", { TableName: tableName })).Table;
  } catch (e) {
    main.appendChild(errorBox(e));
    return;
  }
  new ItemsPage(main, desc).mount();
}

/** Key attributes `[{name, type, role}]` of the table or one of its indexes. */
function keysOf(desc, indexName) {
  const types = Object.fromEntries((desc.AttributeDefinitions || []).map((d) => [d.AttributeName, d.AttributeType]));
  let schema = desc.KeySchema;
  if (indexName) {
    const idx = [...(desc.GlobalSecondaryIndexes || []), ...(desc.LocalSecondaryIndexes || [])].find((i) => i.IndexName === indexName);
    schema = idx ? idx.KeySchema : [];
  }
  return (schema || []).map((k) => ({ name: k.AttributeName, type: types[k.AttributeName] || "S", role: k.KeyType }));
}

function parseJsonField(text, what) {
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw Object.assign(new Error(`${what}: ${e.message}`), { type: "InvalidJSON" });
  }
}

class ItemsPage {
  constructor(main, desc) {
    this.main = main;
    this.desc = desc;
    this.tableKeys = keysOf(desc, null);
    this.pages = [];
    this.pageIndex = 0;
  }

  mount() {
    const d = this.desc;
    const indexes = [["", `Table: ${d.TableName}`], ...(d.GlobalSecondaryIndexes || []).map((i) => [i.IndexName, `GSI: ${i.IndexName}`]), ...(d.LocalSecondaryIndexes || []).map((i) => [i.IndexName, `LSI: ${i.IndexName}`])];
    const [modeField, mode] = field("Operation", select([["Scan", "Scan"], ["Query", "Query"]], "Scan", { id: "op" }));
    const [indexField, index] = field("Table or index", select(indexes, "", { id: "index" }));
    this.mode = mode;
    this.index = index;
    this.keyRow = h("div", { class: "row" });
    const [filterField, filter] = field("Filter expression", h("input", { id: "filter", spellcheck: "false", placeholder: "e.g. #s = :s AND price > :p" }));
    const [projField, proj] = field("Projection expression", h("input", { id: "projection", spellcheck: "false", placeholder: "e.g. id, title, price" }));
    const [namesField, namesText] = field("Expression attribute names (JSON)", h("textarea", { id: "names", rows: 2, spellcheck: "false", placeholder: '{"#s": "status"}', class: "short" }));
    const [valuesField, valuesText] = field("Expression attribute values (DynamoDB JSON)", h("textarea", { id: "values", rows: 2, spellcheck: "false", placeholder: '{":s": {"S": "open"}}', class: "short" }));
    const [limitField, limit] = field("Page size", h("input", { id: "limit", type: "number", min: 1, max: 1000, value: "25" }));
    const [dirField, backward] = field("Descending (sort key order)", h("input", { id: "backward", type: "checkbox" }));
    Object.assign(this, { filter, proj, namesText, valuesText, limit, backward });
    filterField.classList.add("wide");
    projField.classList.add("wide");
    namesField.classList.add("wide");
    valuesField.classList.add("wide");
    mode.addEventListener("change", () => this.renderKeyRow());
    index.addEventListener("change", () => this.renderKeyRow());
    this.error = h("div", { class: "error-slot", id: "query-error" });
    this.results = h("div", { id: "results" });
    this.editorSlot = h("div", { id: "editor-slot" });
    const form = h("form", {
      class: "panel",
      id: "query-form",
      "aria-label": "Query or scan",
      onsubmit: (ev) => {
        ev.preventDefault();
        this.pages = [undefined];
        this.pageIndex = 0;
        this.run();
      },
    },
      h("div", { class: "row" }, modeField, indexField, limitField, dirField),
      this.keyRow,
      h("div", { class: "row" }, filterField, projField),
      h("div", { class: "row" }, namesField, valuesField),
      this.error,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "run", text: "Run" }),
        h("button", { type: "button", id: "new-item", text: "Create item", onclick: () => this.openEditor(null) }),
      ),
    );
    this.main.append(form, this.editorSlot, this.results);
    this.renderKeyRow();
    this.pages = [undefined];
    this.run();
  }

  renderKeyRow() {
    const isQuery = this.mode.value === "Query";
    this.backward.disabled = !isQuery;
    if (!isQuery) {
      replace(this.keyRow);
      this.keyInputs = null;
      return;
    }
    const keys = keysOf(this.desc, this.index.value || null);
    const pk = keys.find((k) => k.role === "HASH");
    const sk = keys.find((k) => k.role === "RANGE");
    const [pkField, pkValue] = field(`${pk.name} (${pk.type}) =`, h("input", { id: "pk-value", required: true, spellcheck: "false" }));
    const parts = [pkField];
    this.keyInputs = { pk, pkValue, sk };
    if (sk) {
      const [opField, op] = field(`${sk.name} (${sk.type})`, select(SORT_OPS, "", { id: "sk-op" }));
      const [v1Field, v1] = field("Value", h("input", { id: "sk-value", spellcheck: "false" }));
      const [v2Field, v2] = field("and", h("input", { id: "sk-value2", spellcheck: "false" }));
      v2Field.hidden = true;
      op.addEventListener("change", () => (v2Field.hidden = op.value !== "between"));
      Object.assign(this.keyInputs, { op, v1, v2 });
      parts.push(opField, v1Field, v2Field);
    }
    replace(this.keyRow, parts);
  }

  request() {
    const input = { TableName: this.desc.TableName, Limit: Number(this.limit.value) || 25 };
    if (this.index.value) input.IndexName = this.index.value;
    const names = parseJsonField(this.namesText.value, "Expression attribute names") || {};
    const values = parseJsonField(this.valuesText.value, "Expression attribute values") || {};
    if (this.filter.value.trim()) input.FilterExpression = this.filter.value.trim();
    if (this.proj.value.trim()) input.ProjectionExpression = this.proj.value.trim();
    if (this.mode.value === "Query" && this.keyInputs) {
      const { pk, pkValue, sk, op, v1, v2 } = this.keyInputs;
      names["#ck0"] = pk.name;
      values[":ck0"] = { [pk.type]: pkValue.value };
      let kce = "#ck0 = :ck0";
      if (sk && op.value) {
        names["#ck1"] = sk.name;
        values[":ck1"] = { [sk.type]: v1.value };
        if (op.value === "between") {
          values[":ck2"] = { [sk.type]: v2.value };
          kce += " AND #ck1 BETWEEN :ck1 AND :ck2";
        } else if (op.value === "begins_with") {
          kce += " AND begins_with(#ck1, :ck1)";
        } else {
          kce += ` AND #ck1 ${op.value} :ck1`;
        }
      }
      input.KeyConditionExpression = kce;
      if (this.backward.checked) input.ScanIndexForward = false;
    }
    if (Object.keys(names).length) input.ExpressionAttributeNames = names;
    if (Object.keys(values).length) input.ExpressionAttributeValues = values;
    return input;
  }

  async run() {
    replace(this.error);
    let input;
    try {
      input = this.request();
    } catch (e) {
      replace(this.error, errorBox(e));
      return;
    }
    const start = this.pages[this.pageIndex];
    if (start) input.ExclusiveStartKey = start;
    replace(this.results, status("Running…"));
    let out;
    try {
      out = await ddb(this.mode.value, input);
    } catch (e) {
      replace(this.results);
      replace(this.error, errorBox(e));
      return;
    }
    this.pages[this.pageIndex + 1] = out.LastEvaluatedKey;
    this.renderResults(out);
  }

  renderResults(out) {
    const items = out.Items || [];
    const cols = columns(items, this.tableKeys.map((k) => k.name).concat(keysOf(this.desc, this.index.value || null).map((k) => k.name)).filter((v, i, a) => a.indexOf(v) === i));
    const shownCols = cols.filter((c) => items.some((it) => c in it));
    const table = h("table", { class: "data", id: "items-results" },
      h("caption", { class: "sr-only", text: "Results" }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "sr-only", text: "Actions" })), shownCols.map((c) => h("th", { scope: "col", text: c })))),
      h("tbody", {}, items.map((item) => h("tr", {},
        h("td", {}, h("button", { type: "button", class: "link", text: "Edit", "aria-label": `Edit item ${this.keyLabel(item)}`, onclick: () => this.openEditor(item) })),
        shownCols.map((c) => {
          if (!(c in item)) return h("td", {});
          const { type, text } = cell(item[c]);
          return h("td", { dataset: { attr: c } }, h("span", { class: `t t-${type}`, text: type, title: type }), h("span", { class: "cell", text }));
        }),
      ))),
    );
    const prev = h("button", { type: "button", id: "prev-page", text: "Previous page", disabled: this.pageIndex === 0, onclick: () => { this.pageIndex -= 1; this.run(); } });
    const next = h("button", { type: "button", id: "next-page", text: "Next page", disabled: !out.LastEvaluatedKey, onclick: () => { this.pageIndex += 1; this.run(); } });
    replace(this.results,
      h("p", { class: "status", role: "status", id: "results-status", text: `Page ${this.pageIndex + 1}: ${out.Count ?? items.length} item${(out.Count ?? items.length) === 1 ? "" : "s"} (scanned ${out.ScannedCount ?? "?"})${out.LastEvaluatedKey ? ", more available" : ""}` }),
      items.length ? h("div", { class: "scroll" }, table) : h("p", { class: "muted", text: "No items." }),
      h("div", { class: "actions" }, prev, next),
    );
  }

  keyLabel(item) {
    return this.tableKeys.map((k) => (item[k.name] ? cell(item[k.name]).text : "")).join(" / ");
  }

  keyOf(item) {
    const key = {};
    for (const k of this.tableKeys) if (item[k.name]) key[k.name] = item[k.name];
    return key;
  }

  openEditor(item) {
    const isNew = !item;
    const template = {};
    for (const k of this.tableKeys) template[k.name] = { [k.type]: k.type === "N" ? "0" : "" };
    let current = item || template;
    let format = "ddb";
    const [fmtField, fmt] = field("Format", select([["ddb", "DynamoDB JSON"], ["plain", "Plain JSON"]], "ddb", { id: "item-format" }));
    const [textField, text] = field(isNew ? "New item" : "Item", h("textarea", { id: "item-json", rows: 10, spellcheck: "false" }));
    textField.classList.add("wide");
    const note = h("p", { class: "hint", id: "item-note" });
    const err = h("div", { class: "error-slot", id: "item-error" });
    const show = () => {
      if (format === "ddb") {
        text.value = formatItem(current);
        note.textContent = "";
      } else {
        const lossy = { value: false };
        text.value = formatItem(itemToPlain(current, lossy));
        note.textContent = lossy.value ? "This item has sets, binary values or numbers a JSON number cannot hold exactly: edit it in DynamoDB JSON to keep them." : "";
      }
    };
    const readItem = () => {
      const parsed = parseJsonField(text.value, "Item");
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw Object.assign(new Error("An item is a JSON object"), { type: "InvalidJSON" });
      return format === "ddb" ? parsed : plainToItem(parsed);
    };
    fmt.addEventListener("change", () => {
      try {
        current = readItem();
        format = fmt.value;
        replace(err);
        show();
      } catch (e) {
        fmt.value = format;
        replace(err, errorBox(e));
      }
    });
    const save = h("button", { type: "button", class: "primary", id: "item-save", text: isNew ? "Create item" : "Save item" });
    save.addEventListener("click", async () => {
      replace(err);
      let newItem;
      try {
        newItem = readItem();
      } catch (e) {
        replace(err, errorBox(e));
        return;
      }
      save.disabled = true;
      try {
        await ddb("PutItem", { TableName: this.desc.TableName, Item: newItem });
        replace(this.editorSlot);
        this.run();
      } catch (e) {
        replace(err, errorBox(e));
      } finally {
        save.disabled = false;
      }
    });
    let armed = false;
    const del = isNew ? null : h("button", { type: "button", class: "danger", id: "item-delete", text: "Delete item" });
    if (del) {
      del.addEventListener("click", async () => {
        if (!armed) {
          armed = true;
          del.textContent = "Confirm delete";
          del.classList.add("primary");
          return;
        }
        replace(err);
        try {
          await ddb("DeleteItem", { TableName: this.desc.TableName, Key: this.keyOf(item) });
          replace(this.editorSlot);
          this.run();
        } catch (e) {
          replace(err, errorBox(e));
        }
      });
    }
    const panel = h("section", { class: "panel", id: "item-editor", "aria-labelledby": "editor-title" },
      h("h2", { id: "editor-title", text: isNew ? "Create item" : `Item ${this.keyLabel(item)}` }),
      h("div", { class: "row" }, fmtField),
      textField,
      note,
      err,
      h("div", { class: "actions" }, save, del, h("button", { type: "button", text: "Close", onclick: () => replace(this.editorSlot) })),
    );
    replace(this.editorSlot, panel);
    show();
    text.focus();
  }
}
