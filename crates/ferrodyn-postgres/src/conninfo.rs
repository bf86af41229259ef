//! The TLS settings of a connection string that tokio-postgres does not understand itself:
//! `sslrootcert=FILE` (taken out) and `sslmode=verify-ca|verify-full` (rewritten to
//! `require`: Ferrodyn always verifies the server's certificate and name when it uses TLS).
//!
//! Both forms are handled: `postgres://…?k=v&k=v` URLs and libpq `key=value` strings (values
//! optionally single-quoted, with `\'` and `\\` escapes). Everything else passes through
//! unchanged, in order.

/// A connection string with its TLS settings taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// The connection string for tokio-postgres.
    pub(crate) conninfo: String,
    /// The CA certificates file (`sslrootcert`), if given.
    pub(crate) root_cert: Option<String>,
}

pub(crate) fn extract(conninfo: &str) -> Result<TlsParams, String> {
    if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        Ok(extract_url(conninfo))
    } else {
        extract_key_value(conninfo)
    }
}

fn extract_url(url: &str) -> TlsParams {
    let Some((base, query)) = url.split_once('?') else {
        return TlsParams {
            conninfo: url.to_owned(),
            root_cert: None,
        };
    };
    let mut root_cert = None;
    let mut kept = Vec::new();
    for param in query.split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            "sslrootcert" => root_cert = Some(percent_decode(value)),
            "sslmode" if matches!(value, "verify-ca" | "verify-full") => {
                kept.push("sslmode=require".to_owned());
            }
            _ => kept.push(param.to_owned()),
        }
    }
    let conninfo = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    TlsParams {
        conninfo,
        root_cert,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Names the word that lacks its `=` if it looks like a key (values, which may be passwords,
/// never go into messages).
fn missing_eq(rest: &str) -> String {
    let word = rest.split_whitespace().next().unwrap_or("");
    if !word.is_empty()
        && word.len() <= 32
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        format!("no '=' after {word:?}")
    } else {
        "a word without '='".to_owned()
    }
}

/// One `key=value` pair as written (`raw`) and as meant (`value`).
struct Pair<'a> {
    key: &'a str,
    raw: &'a str,
    value: String,
}

fn split_key_value(s: &str) -> Result<Vec<Pair<'_>>, String> {
    let mut pairs = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("invalid connection string: {}", missing_eq(rest)))?;
        let key = rest[..eq].trim_end();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err("invalid connection string: a key holds a space".to_owned());
        }
        let after = rest[eq + 1..].trim_start();
        let (value, len) = if let Some(quoted) = after.strip_prefix('\'') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => break,
                    },
                    '\'' => {
                        end = Some(i + 2);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or("invalid connection string: unterminated quoted value")?;
            (value, end)
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            let mut value = String::new();
            let mut chars = after[..end].chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(c) = chars.next() {
                        value.push(c);
                    }
                } else {
                    value.push(c);
                }
            }
            (value, end)
        };
        pairs.push(Pair {
            key,
            raw: &after[..len],
            value,
        });
        rest = after[len..].trim_start();
    }
    Ok(pairs)
}

fn extract_key_value(s: &str) -> Result<TlsParams, String> {
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in split_key_value(s)? {
        match pair.key {
            "sslrootcert" => root_cert = Some(pair.value),
            "sslmode" if matches!(pair.value.as_str(), "verify-ca" | "verify-full") => {
                kept.push("sslmode=require".to_owned());
            }
            key => kept.push(format!("{key}={}", pair.raw)),
        }
    }
    Ok(TlsParams {
        conninfo: kept.join(" "),
        root_cert,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn examples() {
        let p = extract("postgres://u@h:1,h2:2/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x").unwrap();
        assert_eq!(
            p.conninfo,
            "postgres://u@h:1,h2:2/db?sslmode=require&application_name=x"
        );
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/ca.pem"));
        let p = extract("postgres://u@h/db?sslrootcert=/ca.pem").unwrap();
        assert_eq!(p.conninfo, "postgres://u@h/db");
        assert_eq!(p.root_cert.as_deref(), Some("/ca.pem"));
        let p = extract(
            "host=a,b port=1,2 sslrootcert='/my dir/ca\\'s.pem' sslmode=verify-ca dbname = 'x y'",
        )
        .unwrap();
        assert_eq!(p.conninfo, "host=a,b port=1,2 sslmode=require dbname='x y'");
        assert_eq!(p.root_cert.as_deref(), Some("/my dir/ca's.pem"));
        assert_eq!(extract("host=a").unwrap().root_cert, None);
        assert!(extract("host=a broken").is_err());
        // Errors never repeat values (a password may be among them).
        let e = extract("password=s3cr3t 'x").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = extract("password='s3cr3t").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(extract("host='a").is_err());
        assert_eq!(extract("").unwrap().conninfo, "");
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_./-]{1,12}"
    }

    fn spaced() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_./ '\\\\-]{0,12}"
    }

    fn quote(v: &str) -> String {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    proptest! {
        /// Whatever the parameters, the root certificate comes out, `verify-*` becomes
        /// `require`, and what tokio-postgres gets means the same for every other setting.
        #[test]
        fn key_value_strings(
            user in word(), dbname in spaced(), app in spaced(), cert in proptest::option::of(spaced()),
            mode in prop_oneof![Just("disable"), Just("prefer"), Just("require"), Just("verify-ca"), Just("verify-full")],
            cert_first in any::<bool>(),
        ) {
            let mut parts = vec![format!("user={user}"), format!("dbname = {}", quote(&dbname))];
            let cert_part = cert.as_ref().map(|c| format!("sslrootcert={}", quote(c)));
            if cert_first { parts.splice(0..0, cert_part.clone()); }
            parts.push(format!("application_name={}", quote(&app)));
            parts.push(format!("sslmode={mode}"));
            if !cert_first { parts.extend(cert_part); }
            let p = extract(&parts.join("  ")).unwrap();
            prop_assert_eq!(&p.root_cert, &cert);
            let config = tokio_postgres::Config::from_str(&p.conninfo).unwrap();
            prop_assert_eq!(config.get_user(), Some(user.as_str()));
            prop_assert_eq!(config.get_dbname(), Some(dbname.as_str()));
            prop_assert_eq!(config.get_application_name(), Some(app.as_str()));
            let tls = !matches!(mode, "disable" | "prefer");
            prop_assert_eq!(config.get_ssl_mode() == tokio_postgres::config::SslMode::Require, tls);
        }

        #[test]
        fn urls(
            user in word(), dbname in word(), cert in proptest::option::of(word()),
            mode in prop_oneof![Just("prefer"), Just("require"), Just("verify-full")],
        ) {
            let mut params = vec![format!("sslmode={mode}")];
            if let Some(c) = &cert {
                params.insert(0, format!("sslrootcert={}", c.replace('/', "%2F")));
            }
            params.push("application_name=app".to_owned());
            let url = format!("postgres://{user}@127.0.0.1:5432,127.0.0.1:5433/{dbname}?{}", params.join("&"));
            let p = extract(&url).unwrap();
            prop_assert_eq!(&p.root_cert, &cert);
            let config = tokio_postgres::Config::from_str(&p.conninfo).unwrap();
            prop_assert_eq!(config.get_user(), Some(user.as_str()));
            prop_assert_eq!(config.get_dbname(), Some(dbname.as_str()));
            prop_assert_eq!(config.get_application_name(), Some("app"));
            prop_assert_eq!(config.get_hosts().len(), 2);
            prop_assert_eq!(config.get_ssl_mode() == tokio_postgres::config::SslMode::Require, mode != "prefer");
        }
    }
}
