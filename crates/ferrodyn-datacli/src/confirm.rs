//! Confirmation of destructive steps: a question on a terminal, `--yes` to skip it, and a refusal
//! when there is no terminal to ask on (scripts must say `--yes`).

use std::io::{BufRead, IsTerminal, Write};

use crate::DataError;

/// Asks `question` (`delete backup ARN?`) unless `yes`; Ok only on an answer of y or yes.
pub fn confirm(question: &str, yes: bool) -> crate::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(DataError::Refused(format!(
            "{question} Refusing without a terminal to confirm on; pass --yes to go ahead \
             (or --dry-run to see the plan)"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| DataError::io("reading the answer", e))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(DataError::Refused(
            "not confirmed; nothing changed".to_owned(),
        )),
    }
}
