//! `serve --config FILE`: a TOML file that sets any `serve` flag, below the command line and the
//! `FERRODYN_*` environment in precedence (command line > environment > file > defaults).
//!
//! The file's keys are the flags' long names (`data-dir` or `data_dir`); the set of keys is read
//! from clap's own definition of `serve`, so a flag added there is accepted here without more
//! code. An unknown key or a value of the wrong kind is an error that names the key. Errors never
//! quote a value from the file (it may hold a secret), only keys and line numbers.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

/// Parses the command line; when `serve` has a configuration file, its keys fill in every flag
/// that neither the command line nor the environment set.
pub fn parse<C: CommandFactory + FromArgMatches>(args: Vec<OsString>) -> anyhow::Result<C> {
    let matches = C::command().get_matches_from(args.clone());
    let Some(("serve", serve)) = matches.subcommand() else {
        return Ok(C::from_arg_matches(&matches)?);
    };
    let Some(path) = serve.get_one::<std::path::PathBuf>("config") else {
        return Ok(C::from_arg_matches(&matches)?);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading configuration file {}", path.display()))?;
    let mut cmd = C::command();
    let serve_cmd = cmd
        .find_subcommand_mut("serve")
        .context("no serve subcommand")?;
    let extra = file_args(serve_cmd, serve, &text, path)?;
    let mut all = args;
    all.extend(extra.into_iter().map(OsString::from));
    // The command line alone parsed, so an error now comes from a value in the file; clap would
    // quote that value, so only the flag is named.
    let matches = C::command().try_get_matches_from(all).map_err(|e| {
        let flag = match e.get(clap::error::ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(s)) => s.clone(),
            _ => "a key".to_owned(),
        };
        anyhow::anyhow!(
            "{}: invalid value for {flag} ({:?})",
            path.display(),
            e.kind()
        )
    })?;
    Ok(C::from_arg_matches(&matches)?)
}

/// The `--flag value` arguments the file adds: one per key whose flag the command line and the
/// environment left unset.
fn file_args(
    serve: &clap::Command,
    matches: &ArgMatches,
    text: &str,
    path: &Path,
) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(l) => anyhow::anyhow!("{}, line {l}: {}", path.display(), e.message()),
            None => anyhow::anyhow!("{}: {}", path.display(), e.message()),
        }
    })?;
    let set_above = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let mut out = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config" && long != "help")
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: unknown key `{key}` (`ferrodyn serve --help` lists the flags)",
                    path.display()
                )
            })?;
        let id = arg.get_id().as_str();
        // The one pair of flags that exclude each other: whichever a higher source sets wins.
        let excluded_by = match id {
            "data_dir" => Some("in_memory"),
            "in_memory" => Some("data_dir"),
            _ => None,
        };
        if set_above(id) || excluded_by.is_some_and(set_above) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    out.push(format!("--{long}"));
                }
            }
            _ if !takes_value => {
                bail!("{}: `{key}` must be true or false", path.display())
            }
            toml::Value::String(s) => out.push(format!("--{long}={s}")),
            toml::Value::Integer(i) => out.push(format!("--{long}={i}")),
            toml::Value::Float(f) => out.push(format!("--{long}={f}")),
            toml::Value::Boolean(b) => out.push(format!("--{long}={b}")),
            _ => bail!(
                "{}: `{key}` must be a string, a number or a boolean",
                path.display()
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Cmd,
    }
    #[derive(Subcommand, Debug)]
    enum Cmd {
        Serve(Serve),
        Other,
    }
    #[derive(Args, Debug)]
    struct Serve {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 8000)]
        port: u16,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long, default_value = "./d", conflicts_with = "in_memory")]
        data_dir: String,
        #[arg(long)]
        in_memory: bool,
        #[arg(long, default_value_t = 60.0)]
        ttl_interval: f64,
    }

    fn run(file: &str, flags: &[&str]) -> anyhow::Result<Serve> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, file).unwrap();
        let mut args: Vec<OsString> = vec!["x".into(), "serve".into(), "--config".into()];
        args.push(path.into_os_string());
        args.extend(flags.iter().map(OsString::from));
        match parse::<Cli>(args)?.command {
            Cmd::Serve(s) => Ok(s),
            Cmd::Other => unreachable!(),
        }
    }

    #[test]
    fn file_fills_in_what_the_command_line_left_unset() {
        let s = run(
            "port = 9\nregion = \"eu-west-1\"\nin-memory = true\nttl_interval = 0.5\n",
            &["--region", "ap-south-1"],
        )
        .unwrap();
        assert_eq!(s.port, 9);
        assert_eq!(s.region, "ap-south-1");
        assert!(s.in_memory);
        assert_eq!(s.ttl_interval, 0.5);
    }

    #[test]
    fn command_line_side_of_an_exclusive_pair_wins() {
        let s = run("in_memory = true\n", &["--data-dir", "/x"]).unwrap();
        assert!(!s.in_memory);
        assert_eq!(s.data_dir, "/x");
        let s = run("data_dir = \"/y\"\n", &["--in-memory"]).unwrap();
        assert!(s.in_memory);
    }

    #[test]
    fn unknown_keys_and_wrong_kinds_name_the_key_but_not_the_value() {
        let e = run("port = 1\nsecret_thing = \"hunter2\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `secret_thing`"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = run("in_memory = \"hunter2\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`in_memory` must be true or false"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = run("config = \"other.toml\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `config`"), "{e}");
        let e = run("port = \"hunter2\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("invalid value for --port"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = run("port = [1]\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`port` must be a string"), "{e}");
    }

    #[test]
    fn syntax_errors_give_the_line_without_the_text() {
        let e = run("port = 1\nregion = \"hunter2\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
