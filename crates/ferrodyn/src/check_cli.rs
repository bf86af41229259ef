//! `ferrodyn check` and `ferrodyn repair`: offline verification and repair of a data
//! directory (the logic is `ferrodyn_core::check`; this file opens the directory, asks, and
//! prints). Both hold the directory's lock, so they refuse while a server uses it.
//!
//! Exit status: 0 when the directory is clean (after the repair, for `repair`), 1 when
//! problems remain, 2 when the directory cannot be opened (a damaged journal, a lock held).

use std::path::{Path, PathBuf};

use clap::Args;
use ferrodyn_core::check::{self, CheckReport, Problem, RepairOutcome, RepairPlan};
use ferrodyn_storage::{FjallOptions, FjallStorage};
use serde_json::{json, Value};

#[derive(Args)]
pub struct CheckArgs {
    /// The data directory (stop the server first: check takes the directory's lock).
    #[arg(long, default_value = "./ferrodyn-data", env = "FERRODYN_DATA_DIR")]
    data_dir: PathBuf,
    /// Print the report as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RepairArgs {
    /// The data directory (stop the server first: repair takes the directory's lock).
    #[arg(long, default_value = "./ferrodyn-data", env = "FERRODYN_DATA_DIR")]
    data_dir: PathBuf,
    /// Only check and print what would be rebuilt; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rebuild without asking for confirmation.
    #[arg(long)]
    yes: bool,
    /// Print the outcome as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Opens the directory for checking: it must exist already (never created here), and no
/// background compaction runs meanwhile.
fn open(dir: &Path) -> Result<FjallStorage, String> {
    if !dir.is_dir() {
        return Err(format!("no data directory at {}", dir.display()));
    }
    FjallStorage::open_with(
        dir,
        FjallOptions {
            settle_after: None,
            ..FjallOptions::default()
        },
    )
    .map_err(|e| format!("cannot open data directory {}: {e}", dir.display()))
}

fn problem_json(p: &Problem) -> Value {
    json!({
        "kind": p.kind.as_str(),
        "table": p.table,
        "index": p.index,
        "keyspace": p.keyspace,
        "key": p.key,
        "file": p.file,
        "detail": p.detail,
        "repairable": p.repairable(),
    })
}

fn report_json(dir: &Path, r: &CheckReport) -> Value {
    json!({
        "data_dir": dir.display().to_string(),
        "clean": r.is_clean(),
        "keyspaces": r.keyspaces,
        "entries": r.entries,
        "statistics_saved": r.statistics_saved,
        "tables": r.tables.iter().map(|t| json!({
            "name": t.name,
            "items": t.items,
            "bytes": t.bytes,
            "index_entries": t.index_entries,
        })).collect::<Vec<_>>(),
        "skipped": r.skipped,
        "problem_count": r.problem_count,
        "problems": r.problems.iter().map(problem_json).collect::<Vec<_>>(),
    })
}

fn print_report(dir: &Path, r: &CheckReport) {
    println!(
        "checked {}: {} keyspaces, {} entries, {} tables",
        dir.display(),
        r.keyspaces,
        r.entries,
        r.tables.len()
    );
    for t in &r.tables {
        let indexes: Vec<String> = t
            .index_entries
            .iter()
            .map(|(n, c)| format!("{n}: {c}"))
            .collect();
        println!(
            "  table {}: {} items, {} bytes{}",
            t.name,
            t.items,
            t.bytes,
            if indexes.is_empty() {
                String::new()
            } else {
                format!("; index entries {}", indexes.join(", "))
            }
        );
    }
    for s in &r.skipped {
        println!("  skipped {s}");
    }
    if !r.statistics_saved {
        println!("  statistics: none saved (the next start recounts every table)");
    }
    if r.is_clean() {
        println!("clean: no problems found");
        return;
    }
    println!("{} problem(s) found:", r.problem_count);
    for p in &r.problems {
        println!("  {p}");
    }
    if r.problem_count > r.problems.len() as u64 {
        println!(
            "  ... and {} more",
            r.problem_count - r.problems.len() as u64
        );
    }
}

fn fail_open(json_out: bool, dir: &Path, msg: &str) -> i32 {
    if json_out {
        println!(
            "{}",
            json!({"data_dir": dir.display().to_string(), "clean": false, "error": msg})
        );
    }
    eprintln!("error: {msg}");
    2
}

/// `ferrodyn check`; returns the exit status.
pub fn run_check(args: CheckArgs) -> i32 {
    let storage = match open(&args.data_dir) {
        Ok(s) => s,
        Err(msg) => return fail_open(args.json, &args.data_dir, &msg),
    };
    let report = match check::check(&storage) {
        Ok(r) => r,
        Err(e) => return fail_open(args.json, &args.data_dir, &format!("check failed: {e}")),
    };
    if args.json {
        println!("{}", report_json(&args.data_dir, &report));
    } else {
        print_report(&args.data_dir, &report);
    }
    i32::from(!report.is_clean())
}

fn plan_json(plan: &RepairPlan) -> Value {
    json!({
        "rebuild_indexes": plan.indexes.iter().map(|(t, i)| json!({"table": t, "index": i})).collect::<Vec<_>>(),
        "rewrite_statistics": plan.statistics,
        "unrepairable": plan.unrepairable.iter().map(problem_json).collect::<Vec<_>>(),
    })
}

fn print_plan(plan: &RepairPlan, dry_run: bool) {
    let verb = if dry_run { "would rebuild" } else { "rebuild" };
    for (t, i) in &plan.indexes {
        println!("{verb} index {i} of table {t} from the table's items");
    }
    for t in &plan.statistics {
        println!(
            "{} the saved statistics of table {t} from a recount",
            if dry_run { "would rewrite" } else { "rewrite" }
        );
    }
    for p in &plan.unrepairable {
        println!("cannot repair (restore the table from a backup): {p}");
    }
}

/// `ferrodyn repair`; returns the exit status.
pub fn run_repair(args: RepairArgs) -> i32 {
    let storage = match open(&args.data_dir) {
        Ok(s) => s,
        Err(msg) => return fail_open(args.json, &args.data_dir, &msg),
    };
    let before = match check::check(&storage) {
        Ok(r) => r,
        Err(e) => return fail_open(args.json, &args.data_dir, &format!("check failed: {e}")),
    };
    let plan = check::plan_repair(&before);
    if !args.json {
        print_report(&args.data_dir, &before);
        print_plan(&plan, args.dry_run);
    }
    if plan.is_empty() || args.dry_run {
        if args.json {
            println!(
                "{}",
                json!({"dry_run": args.dry_run, "before": report_json(&args.data_dir, &before), "plan": plan_json(&plan)})
            );
        } else if plan.is_empty() {
            println!("nothing to repair");
        }
        return i32::from(!before.is_clean());
    }
    let question = format!(
        "Rebuild {} index(es) and rewrite the statistics of {} table(s) in {}?",
        plan.indexes.len(),
        plan.statistics.len(),
        args.data_dir.display()
    );
    if let Err(e) = ferrodyn_datacli::confirm(&question, args.yes) {
        eprintln!("{e}");
        return 1;
    }
    let outcome = match check::repair(&storage, &plan) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: repair failed: {e} (run check and repair again)");
            return 1;
        }
    };
    let after = match check::check(&storage) {
        Ok(r) => r,
        Err(e) => return fail_open(args.json, &args.data_dir, &format!("check failed: {e}")),
    };
    if args.json {
        println!(
            "{}",
            json!({
                "dry_run": false,
                "before": report_json(&args.data_dir, &before),
                "plan": plan_json(&plan),
                "repaired": outcome_json(&outcome),
                "after": report_json(&args.data_dir, &after),
            })
        );
    } else {
        for (t, i, n) in &outcome.indexes {
            println!("rebuilt index {i} of table {t}: {n} entries");
        }
        for t in &outcome.statistics {
            println!("rewrote the statistics of table {t}");
        }
        print_report(&args.data_dir, &after);
    }
    i32::from(!after.is_clean())
}

fn outcome_json(o: &RepairOutcome) -> Value {
    json!({
        "indexes": o.indexes.iter().map(|(t, i, n)| json!({"table": t, "index": i, "entries": n})).collect::<Vec<_>>(),
        "statistics": o.statistics,
    })
}
