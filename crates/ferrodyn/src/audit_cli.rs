//! `ferrodyn audit`: reads and verifies a server's audit log through its admin API
//! (`FerrodynAdmin_20261201.QueryAuditLog` / `VerifyAuditLog`), signed with SigV4 like any SDK
//! request, so it is authorized like any other request.
//!
//! Credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`,
//! the region from `AWS_REGION` (default `us-east-1`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ferrodyn_bench::sigv4::{amz_date, Credentials, Signer};

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    endpoint: Endpoint,
    /// Only records of this table.
    #[arg(long)]
    table: Option<String>,
    /// Only records of this item: its key in DynamoDB JSON, e.g. '{"pk":{"S":"a"}}'.
    #[arg(long)]
    key: Option<String>,
    /// Only records of this principal (access key name).
    #[arg(long)]
    principal: Option<String>,
    /// Records at or after this time (RFC 3339 UTC, e.g. 2026-12-05T14:02:31Z, or epoch ms).
    #[arg(long)]
    since: Option<String>,
    /// Records at or before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exit status 0 when intact, 1 naming the first broken record.
    Verify {
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

#[derive(Args, Clone)]
pub(crate) struct Endpoint {
    /// The server's URL, e.g. http://127.0.0.1:8000.
    #[arg(long, env = "FERRODYN_ENDPOINT", global = true)]
    pub(crate) endpoint: Option<String>,
    /// PEM certificate of a CA to trust for an https endpoint (besides the system's).
    #[arg(long, global = true)]
    pub(crate) ca_cert: Option<PathBuf>,
}

/// Epoch milliseconds from `2026-12-05T14:02:31(.123)?Z` or from a number of milliseconds.
pub fn parse_time(text: &str) -> anyhow::Result<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().context("time out of range");
    }
    let bad = || anyhow::anyhow!("{text:?} is not an RFC 3339 UTC time like 2026-12-05T14:02:31Z");
    let t = text
        .strip_suffix('Z')
        .or(text.strip_suffix('z'))
        .ok_or_else(bad)?;
    let (date, clock) = t.split_once(['T', 't']).ok_or_else(bad)?;
    let num = |s: &str, len: usize| -> anyhow::Result<i64> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let (clock, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let c: Vec<&str> = clock.split(':').collect();
    if d.len() != 3 || c.len() != 3 || frac.len() > 9 {
        return Err(bad());
    }
    let (y, mo, da) = (num(d[0], 4)?, num(d[1], 2)?, num(d[2], 2)?);
    let (h, mi, s) = (num(c[0], 2)?, num(c[1], 2)?, num(c[2], 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let ms = if frac.is_empty() {
        0
    } else {
        num(&format!("{frac:0<3}")[..3], 3)?
    };
    let days = ferrodyn_model::calendar::days_from_civil(y, mo as u32, da as u32);
    let total = ((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + ms;
    u64::try_from(total).map_err(|_| bad())
}

pub(crate) struct Client {
    http: reqwest::blocking::Client,
    url: String,
    host: String,
    signer: Signer,
}

impl Client {
    pub(crate) fn new(endpoint: &Endpoint) -> anyhow::Result<Client> {
        let Some(url) = endpoint.endpoint.clone() else {
            bail!("--endpoint URL is required (or FERRODYN_ENDPOINT)");
        };
        let parsed = reqwest::Url::parse(&url).with_context(|| format!("endpoint {url}"))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => bail!("endpoint {url} has no host"),
        };
        let mut builder = reqwest::blocking::Client::builder();
        if let Some(ca) = &endpoint.ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("{} is not a PEM certificate", ca.display()))?,
            );
        }
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            bail!("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to a key allowed to call the admin API");
        };
        let creds = Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: var("AWS_SESSION_TOKEN"),
        };
        let region = var("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        Ok(Client {
            http: builder.build()?,
            url,
            host,
            signer: Signer::new(creds, &region, "dynamodb"),
        })
    }

    /// One signed admin call; the parsed answer, or the server's error as an error.
    pub(crate) fn call(
        &mut self,
        op: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let payload = serde_json::to_vec(body)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let date = amz_date(now);
        let date_text = std::str::from_utf8(&date).unwrap_or_default().to_owned();
        let target = format!("FerrodynAdmin_20261201.{op}");
        let token = self.signer.credentials().session_token.clone();
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/x-amz-json-1.0"),
            ("host", &self.host),
            ("x-amz-date", &date_text),
        ];
        if let Some(t) = &token {
            headers.push(("x-amz-security-token", t));
        }
        headers.push(("x-amz-target", &target));
        let auth = self.signer.sign("POST", "/", "", &headers, &date, &payload);
        let mut req = self.http.post(&self.url).header("authorization", auth);
        for (k, v) in &headers {
            if *k != "host" {
                req = req.header(*k, *v);
            }
        }
        let resp = req.body(payload).send().context("calling the server")?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().context("reading the answer")?;
        if !status.is_success() {
            let ty = v["__type"].as_str().unwrap_or("error");
            let ty = ty.rsplit('#').next().unwrap_or(ty);
            bail!("{ty}: {}", v["message"].as_str().unwrap_or(""));
        }
        Ok(v)
    }
}

pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        Some(AuditCommand::Verify { endpoint }) => {
            let endpoint = Endpoint {
                endpoint: endpoint.endpoint.or(args.endpoint.endpoint),
                ca_cert: endpoint.ca_cert.or(args.endpoint.ca_cert),
            };
            let v = Client::new(&endpoint)?.call("VerifyAuditLog", &serde_json::json!({}))?;
            println!("{v}");
            if v["Intact"].as_bool() != Some(true) {
                let b = &v["BrokenAt"];
                eprintln!(
                    "audit log broken at record {}: {}",
                    b["Seq"],
                    b["Reason"].as_str().unwrap_or("")
                );
                std::process::exit(1);
            }
            Ok(())
        }
        None => {
            let mut client = Client::new(&args.endpoint)?;
            let mut body = serde_json::Map::new();
            if let Some(t) = args.table {
                body.insert("TableName".into(), t.into());
            }
            if let Some(k) = args.key {
                let key: serde_json::Value =
                    serde_json::from_str(&k).context("--key must be DynamoDB JSON")?;
                body.insert("Key".into(), key);
            }
            if let Some(p) = args.principal {
                body.insert("Principal".into(), p.into());
            }
            if let Some(t) = args.since {
                body.insert("SinceMs".into(), parse_time(&t)?.into());
            }
            if let Some(t) = args.until {
                body.insert("UntilMs".into(), parse_time(&t)?.into());
            }
            body.insert("Limit".into(), 1000.into());
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            loop {
                let v = client.call("QueryAuditLog", &serde_json::Value::Object(body.clone()))?;
                for r in v["Records"].as_array().into_iter().flatten() {
                    use std::io::Write;
                    writeln!(out, "{r}")?;
                }
                match v["LastEvaluatedSeq"].as_u64() {
                    Some(n) => {
                        body.insert("ExclusiveStartSeq".into(), n.into());
                    }
                    None => break,
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("2000-02-29T00:00:00.5Z").unwrap(),
            951_782_400_500
        );
        assert_eq!(
            parse_time("2026-12-05T23:59:59.123Z").unwrap(),
            1_796_515_199_123
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-12-05 10:00:00Z",
            "2026-12-05T10:00:00",
            "x",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
