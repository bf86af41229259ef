// Tables: the list (DescribeTable and DescribeTimeToLive for each), create (keys, GSIs, LSIs,
// billing mode, stream) and delete behind a confirmation that asks for the table's name.

import { h, field, select, errorBox, replace, status, formatBytes } from "../dom.js";
import { ddb, listAllTables } from "../api.js";

const KEY_TYPES = [["S", "String"], ["N", "Number"], ["B", "Binary"]];

export async function render(main, ctx) {
  const list = h("div", {}, status("Loading tables…"));
  const formSlot = h("div");
  main.append(
    h("div", { class: "row" },
      h("h1", { text: "Tables" }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", id: "create-table-open", text: "Create table", onclick: () => showCreate(formSlot, () => load(list, ctx)) }),
        h("button", { type: "button", text: "Refresh", onclick: () => load(list, ctx) }),
      ),
    ),
    formSlot,
    list,
  );
  await load(list, ctx);
}

async function describe(name) {
  const [d, ttl] = await Promise.allSettled([
    ddb("DescribeTable", { TableName: name }),
    ddb("DescribeTimeToLive", { TableName: name }),
  ]);
  return {
    name,
    table: d.status === "fulfilled" ? d.value.Table : null,
    error: d.status === "rejected" ? d.reason : null,
    ttl: ttl.status === "fulfilled" ? ttl.value.TimeToLiveDescription : null,
  };
}

function keyText(schema, defs) {
  const types = Object.fromEntries((defs || []).map((d) => [d.AttributeName, d.AttributeType]));
  return (schema || []).map((k) => `${k.AttributeName} (${types[k.AttributeName] || "?"}, ${k.KeyType === "HASH" ? "partition" : "sort"})`).join(", ");
}

async function load(list, ctx) {
  replace(list, status("Loading tables…"));
  let names;
  try {
    names = await listAllTables();
  } catch (e) {
    replace(list, errorBox(e));
    return;
  }
  if (names.length === 0) {
    replace(list, h("p", { class: "panel muted", text: "No tables yet. Create one to start." }));
    return;
  }
  const rows = await Promise.all(names.map(describe));
  const table = h("table", { class: "data", id: "tables-list" },
    h("caption", { class: "sr-only", text: "Tables" }),
    h("thead", {}, h("tr", {}, ["Name", "Status", "Items", "Size", "Keys", "Indexes", "Billing", "Stream", "TTL", ""].map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, rows.map((r) => tableRow(r, list, ctx))),
  );
  replace(list, h("div", { class: "scroll" }, table), h("p", { class: "status", role: "status", text: `${names.length} table${names.length === 1 ? "" : "s"}` }));
}

function tableRow(r, list, ctx) {
  const t = r.table;
  if (!t) return h("tr", {}, h("td", { text: r.name }), h("td", { colspan: 9 }, errorBox(r.error)));
  const gsis = (t.GlobalSecondaryIndexes || []).map((i) => `${i.IndexName} (GSI, ${i.IndexStatus || "ACTIVE"})`);
  const lsis = (t.LocalSecondaryIndexes || []).map((i) => `${i.IndexName} (LSI)`);
  const stream = t.StreamSpecification && t.StreamSpecification.StreamEnabled ? t.StreamSpecification.StreamViewType : null;
  const ttl = r.ttl ? r.ttl.TimeToLiveStatus + (r.ttl.AttributeName ? ` (${r.ttl.AttributeName})` : "") : "–";
  const billing = (t.BillingModeSummary && t.BillingModeSummary.BillingMode) || "PROVISIONED";
  return h("tr", { dataset: { table: t.TableName } },
    h("th", { scope: "row" }, h("a", { href: `#/items?table=${encodeURIComponent(t.TableName)}`, text: t.TableName })),
    h("td", {}, h("span", { class: `badge${t.TableStatus === "ACTIVE" ? " on" : ""}`, text: t.TableStatus })),
    h("td", { class: "num", text: String(t.ItemCount ?? "–") }),
    h("td", { text: formatBytes(t.TableSizeBytes) }),
    h("td", { text: keyText(t.KeySchema, t.AttributeDefinitions) }),
    h("td", { text: [...gsis, ...lsis].join(", ") || "–" }),
    h("td", { text: billing === "PAY_PER_REQUEST" ? "On-demand" : `Provisioned ${t.ProvisionedThroughput?.ReadCapacityUnits ?? "?"}/${t.ProvisionedThroughput?.WriteCapacityUnits ?? "?"}` }),
    h("td", {}, stream ? h("a", { href: `#/streams?table=${encodeURIComponent(t.TableName)}`, text: stream }) : "Off"),
    h("td", { text: ttl }),
    h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Delete table ${t.TableName}`, text: "Delete", onclick: () => confirmDelete(t.TableName, list, ctx) })),
  );
}

function confirmDelete(name, list, ctx) {
  const [typedField, typed] = field(`Type the table name to confirm`, h("input", { autocomplete: "off", spellcheck: "false" }));
  const err = h("div", { class: "error-slot" });
  const confirm = h("button", { type: "submit", class: "danger primary", disabled: true, text: "Delete table" });
  typed.addEventListener("input", () => (confirm.disabled = typed.value !== name));
  const dialog = h("dialog", { "aria-labelledby": "delete-title", id: "delete-dialog" },
    h("form", {
      method: "dialog",
      onsubmit: async (ev) => {
        ev.preventDefault();
        if (typed.value !== name) return;
        confirm.disabled = true;
        try {
          await ddb("DeleteTable", { TableName: name });
          dialog.close();
          dialog.remove();
          await load(list, ctx);
        } catch (e) {
          replace(err, errorBox(e));
          confirm.disabled = false;
        }
      },
    },
      h("h2", { id: "delete-title", text: `Delete table ${name}?` }),
      h("p", { text: "Every item, index and stream record of the table is deleted. This cannot be undone." }),
      typedField, err,
      h("div", { class: "actions" },
        confirm,
        h("button", { type: "button", text: "Cancel", onclick: () => { dialog.close(); dialog.remove(); } }),
      ),
    ),
  );
  document.body.appendChild(dialog);
  dialog.showModal();
  typed.focus();
}

function keyFields(prefix, legend, required) {
  const [nameField, name] = field(`${legend} name`, h("input", { name: `${prefix}-name`, required, spellcheck: "false" }));
  const [typeField, type] = field(`${legend} type`, select(KEY_TYPES, "S", { name: `${prefix}-type` }));
  return { el: h("div", { class: "row" }, nameField, typeField), name, type };
}

function indexRow(kind, container) {
  const [nameField, name] = field("Index name", h("input", { name: `${kind}-index-name`, required: true, spellcheck: "false" }));
  const pk = kind === "gsi" ? keyFields(`${kind}-pk`, "Partition key", true) : null;
  const sk = keyFields(`${kind}-sk`, "Sort key", kind === "lsi");
  const [projField, proj] = field("Projection", select([["ALL", "All attributes"], ["KEYS_ONLY", "Keys only"]], "ALL", { name: `${kind}-projection` }));
  const row = { kind, name, pk, sk, proj };
  const fs = h("fieldset", { class: `index ${kind}` },
    h("legend", { text: kind === "gsi" ? "Global secondary index" : "Local secondary index" }),
    h("div", { class: "row" }, nameField, projField),
    pk ? pk.el : null,
    sk.el,
    h("button", { type: "button", class: "link", text: "Remove index", onclick: () => { fs.remove(); container.rows.delete(row); } }),
  );
  container.rows.add(row);
  return fs;
}

function showCreate(slot, reload) {
  const pk = keyFields("pk", "Partition key", true);
  const sk = keyFields("sk", "Sort key", false);
  const [nameField, name] = field("Table name", h("input", { name: "table-name", required: true, spellcheck: "false", minlength: 3, maxlength: 255 }));
  const [billingField, billing] = field("Capacity mode", select([["PAY_PER_REQUEST", "On-demand"], ["PROVISIONED", "Provisioned"]], "PAY_PER_REQUEST", { name: "billing" }));
  const [rcuField, rcu] = field("Read capacity units", h("input", { type: "number", min: 1, value: "5", name: "rcu" }));
  const [wcuField, wcu] = field("Write capacity units", h("input", { type: "number", min: 1, value: "5", name: "wcu" }));
  const capacity = h("div", { class: "row", hidden: true }, rcuField, wcuField);
  billing.addEventListener("change", () => (capacity.hidden = billing.value !== "PROVISIONED"));
  const [streamField, stream] = field("Stream", select([["", "Off"], ["NEW_AND_OLD_IMAGES", "New and old images"], ["NEW_IMAGE", "New image"], ["OLD_IMAGE", "Old image"], ["KEYS_ONLY", "Keys only"]], "", { name: "stream" }));
  const indexes = { rows: new Set() };
  const indexList = h("div");
  const err = h("div", { class: "error-slot" });
  const submit = h("button", { type: "submit", class: "primary", text: "Create" });
  const form = h("form", {
    class: "panel",
    id: "create-table",
    "aria-labelledby": "create-title",
    onsubmit: async (ev) => {
      ev.preventDefault();
      replace(err);
      const defs = new Map();
      const addDef = (k) => defs.set(k.name.value.trim(), k.type.value);
      const keySchema = (p, s) => {
        const ks = [{ AttributeName: p.name.value.trim(), KeyType: "HASH" }];
        addDef(p);
        if (s && s.name.value.trim()) {
          ks.push({ AttributeName: s.name.value.trim(), KeyType: "RANGE" });
          addDef(s);
        }
        return ks;
      };
      const input = { TableName: name.value.trim(), KeySchema: keySchema(pk, sk), BillingMode: billing.value };
      if (billing.value === "PROVISIONED") {
        input.ProvisionedThroughput = { ReadCapacityUnits: Number(rcu.value), WriteCapacityUnits: Number(wcu.value) };
      }
      const gsis = [];
      const lsis = [];
      for (const r of indexes.rows) {
        const idx = { IndexName: r.name.value.trim(), Projection: { ProjectionType: r.proj.value } };
        if (r.kind === "gsi") {
          idx.KeySchema = keySchema(r.pk, r.sk);
          if (billing.value === "PROVISIONED") idx.ProvisionedThroughput = input.ProvisionedThroughput;
          gsis.push(idx);
        } else {
          idx.KeySchema = [{ AttributeName: pk.name.value.trim(), KeyType: "HASH" }, { AttributeName: r.sk.name.value.trim(), KeyType: "RANGE" }];
          addDef(r.sk);
          lsis.push(idx);
        }
      }
      if (gsis.length) input.GlobalSecondaryIndexes = gsis;
      if (lsis.length) input.LocalSecondaryIndexes = lsis;
      input.AttributeDefinitions = [...defs].map(([n, t]) => ({ AttributeName: n, AttributeType: t }));
      if (stream.value) input.StreamSpecification = { StreamEnabled: true, StreamViewType: stream.value };
      submit.disabled = true;
      try {
        await ddb("CreateTable", input);
        replace(slot);
        await reload();
      } catch (e) {
        replace(err, errorBox(e));
      } finally {
        submit.disabled = false;
      }
    },
  },
    h("h2", { id: "create-title", text: "Create table" }),
    h("div", { class: "row" }, nameField, billingField, streamField),
    capacity,
    h("fieldset", {}, h("legend", { text: "Primary key" }), pk.el, sk.el),
    indexList,
    h("div", { class: "actions" },
      h("button", { type: "button", id: "add-gsi", text: "Add global index", onclick: () => indexList.appendChild(indexRow("gsi", indexes)) }),
      h("button", { type: "button", id: "add-lsi", text: "Add local index", onclick: () => indexList.appendChild(indexRow("lsi", indexes)) }),
    ),
    err,
    h("div", { class: "actions" }, submit, h("button", { type: "button", text: "Cancel", onclick: () => replace(slot) })),
  );
  replace(slot, form);
  name.focus();
}
