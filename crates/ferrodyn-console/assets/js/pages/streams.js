// Streams viewer: DescribeStream → shards → GetShardIterator (TRIM_HORIZON or LATEST) →
// GetRecords, showing the most recent records of each shard; "Follow" keeps polling the
// iterators every two seconds.

import { h, field, select, errorBox, replace } from "../dom.js";
import { ddb, streams, listAllTables } from "../api.js";
import { cell } from "../ddbjson.js";

const KEEP = 50;
const POLL_MS = 2000;

export async function render(main, ctx) {
  main.appendChild(h("h1", { text: "Streams" }));
  let names;
  try {
    names = await listAllTables();
  } catch (e) {
    main.appendChild(errorBox(e));
    return;
  }
  const descs = (await Promise.all(names.map((n) => ddb("DescribeTable", { TableName: n }).then((d) => d.Table, () => null)))).filter((t) => t && t.LatestStreamArn);
  if (descs.length === 0) {
    main.appendChild(h("p", { class: "panel muted", text: "No table has a stream. Enable one when creating a table (Tables → Create table → Stream)." }));
    return;
  }
  const chosen = descs.find((t) => t.TableName === ctx.params.get("table")) || descs[0];
  const [tableField, tableSel] = field("Table", select(descs.map((t) => t.TableName), chosen.TableName, { id: "stream-table" }));
  tableSel.addEventListener("change", () => ctx.go("streams", { table: tableSel.value }));
  const [posField, pos] = field("Start at", select([["TRIM_HORIZON", "Oldest record (TRIM_HORIZON)"], ["LATEST", "New records only (LATEST)"]], "TRIM_HORIZON", { id: "iterator-type" }));
  const [followField, follow] = field("Follow", h("input", { type: "checkbox", id: "follow" }));
  const err = h("div", { class: "error-slot", id: "stream-error" });
  const out = h("div", { id: "shards" });
  const info = h("p", { class: "muted", id: "stream-info" });
  const state = { iterators: new Map(), records: new Map(), shards: [], timer: null };

  const read = async (fresh) => {
    replace(err);
    try {
      if (fresh) {
        const d = (await streams("DescribeStream", { StreamArn: chosen.LatestStreamArn })).StreamDescription;
        state.shards = d.Shards || [];
        info.textContent = `${d.StreamViewType} · ${d.StreamStatus} · ${state.shards.length} shard${state.shards.length === 1 ? "" : "s"} · ${d.StreamArn}`;
        state.iterators.clear();
        state.records.clear();
        for (const s of state.shards) {
          const it = await streams("GetShardIterator", { StreamArn: chosen.LatestStreamArn, ShardId: s.ShardId, ShardIteratorType: pos.value });
          state.iterators.set(s.ShardId, it.ShardIterator);
          state.records.set(s.ShardId, []);
        }
      }
      for (const s of state.shards) {
        let iterator = state.iterators.get(s.ShardId);
        // Drain what is there now (bounded), keeping the last KEEP records.
        for (let round = 0; iterator && round < 20; round++) {
          const page = await streams("GetRecords", { ShardIterator: iterator, Limit: 1000 });
          const recs = state.records.get(s.ShardId);
          recs.push(...(page.Records || []));
          if (recs.length > KEEP) recs.splice(0, recs.length - KEEP);
          iterator = page.NextShardIterator;
          if (!page.Records || page.Records.length === 0) break;
        }
        state.iterators.set(s.ShardId, iterator);
      }
      show();
    } catch (e) {
      replace(err, errorBox(e));
    }
  };

  const show = () => {
    const total = [...state.records.values()].reduce((n, r) => n + r.length, 0);
    replace(out,
      h("p", { class: "status", role: "status", id: "stream-status", text: `${total} recent record${total === 1 ? "" : "s"} across ${state.shards.length} shard${state.shards.length === 1 ? "" : "s"}` }),
      state.shards.map((s) => {
        const recs = state.records.get(s.ShardId) || [];
        const open = !s.SequenceNumberRange || !s.SequenceNumberRange.EndingSequenceNumber;
        return h("section", { class: "shard panel", "aria-label": `Shard ${s.ShardId}` },
          h("h2", {}, `Shard ${s.ShardId} `, h("span", { class: `badge${open ? " on" : ""}`, text: open ? "open" : "closed" })),
          recs.length === 0
            ? h("p", { class: "muted", text: "No records." })
            : h("div", { class: "scroll" }, h("table", { class: "data stream-records" },
                h("thead", {}, h("tr", {}, ["Event", "Sequence number", "Time", "Keys", "New image", "Old image"].map((c) => h("th", { scope: "col", text: c })))),
                h("tbody", {}, recs.slice().reverse().map((r) => {
                  const d = r.dynamodb || {};
                  const when = d.ApproximateCreationDateTime ? new Date(d.ApproximateCreationDateTime * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
                  return h("tr", { dataset: { event: r.eventName } },
                    h("td", {}, h("span", { class: "badge", text: r.eventName })),
                    h("td", { class: "cell", text: d.SequenceNumber || "" }),
                    h("td", { text: when }),
                    h("td", { class: "cell", text: imageText(d.Keys) }),
                    h("td", { class: "cell", text: imageText(d.NewImage) }),
                    h("td", { class: "cell", text: imageText(d.OldImage) }),
                  );
                })),
              )),
        );
      }),
    );
  };

  const schedule = () => {
    clearTimeout(state.timer);
    if (follow.checked) state.timer = setTimeout(async () => {
      await read(false);
      schedule();
    }, POLL_MS);
  };
  follow.addEventListener("change", schedule);
  pos.addEventListener("change", () => read(true));

  main.append(
    h("div", { class: "panel" },
      h("div", { class: "row" }, tableField, posField, followField,
        h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "stream-read", text: "Read records", onclick: () => read(true) }))),
      info,
      err,
    ),
    out,
  );
  await read(true);
  return () => clearTimeout(state.timer);
}

function imageText(image) {
  if (!image) return "";
  return Object.entries(image).map(([k, v]) => `${k}=${cell(v).text}`).join(", ");
}
