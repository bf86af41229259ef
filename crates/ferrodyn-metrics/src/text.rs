//! A reader of Prometheus text exposition: the samples of a scrape, for tests and tools.
//!
//! Reads `name{label="value",...} number` lines (label values with `\\`, `\"` and `\n`
//! escapes), skips `#` comments and blank lines; an optional timestamp after the value is
//! ignored. Anything else is an error naming the line, never a panic.

/// One sample: metric name, labels in the order written, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|e| format!("line {}: {e}: {line}", n + 1))?);
    }
    Ok(out)
}

/// The value of the sample named `name` whose labels are exactly `labels` (in any order).
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.value)
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

fn parse_line(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(line.len(), |(i, _)| i);
    if name_end == 0 {
        return Err("no metric name");
    }
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let key_end = rest
                .char_indices()
                .find(|&(i, c)| !(is_name_char(c, i == 0) && c != ':'))
                .map_or(rest.len(), |(i, _)| i);
            if key_end == 0 {
                return Err("bad label name");
            }
            let key = rest[..key_end].to_owned();
            rest = rest[key_end..]
                .strip_prefix("=\"")
                .ok_or("expected =\" after a label name")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value"),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("bad escape in a label value"),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((key, value));
            rest = &rest[end + 1..];
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err("expected , or } after a label");
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let value = match fields.next().ok_or("no value")? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|_| "bad value")?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| "bad timestamp")?;
    }
    if fields.next().is_some() {
        return Err("trailing text");
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escape(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    #[test]
    fn reads_what_prometheus_client_writes() {
        let text = "# HELP x_total Things.\n# TYPE x_total counter\n\
                    x_total{operation=\"PutItem\",outcome=\"ok\"} 3\n\
                    h_bucket{le=\"+Inf\"} 4\nh_sum 0.25\ng 1.5e3 1700000000\n# EOF\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            value(
                &s,
                "x_total",
                &[("outcome", "ok"), ("operation", "PutItem")]
            ),
            Some(3.0)
        );
        assert_eq!(value(&s, "h_bucket", &[("le", "+Inf")]), Some(4.0));
        assert_eq!(value(&s, "h_sum", &[]), Some(0.25));
        assert_eq!(value(&s, "g", &[]), Some(1500.0));
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "{a=\"b\"} 1",
            "x{a=\"b} 1",
            "x{a=b} 1",
            "x{a=\"\\q\"} 1",
            "x",
            "x one",
            "x 1 2 3",
            "x{a=\"b\" c=\"d\"} 1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn written_samples_read_back(
            name in "[a-zA-Z_][a-zA-Z0-9_:]{0,20}",
            labels in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,10}", any::<String>()), 0..4),
            v in any::<f64>().prop_filter("finite", |v| v.is_finite()),
        ) {
            let body: Vec<String> = labels
                .iter()
                .map(|(k, val)| format!("{k}=\"{}\"", escape(val)))
                .collect();
            let line = if labels.is_empty() {
                format!("{name} {v:?}")
            } else {
                format!("{name}{{{}}} {v:?}", body.join(","))
            };
            let s = parse(&line).unwrap();
            prop_assert_eq!(s.len(), 1);
            prop_assert_eq!(&s[0].name, &name);
            prop_assert_eq!(&s[0].labels, &labels);
            prop_assert_eq!(s[0].value, v);
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(text in any::<String>()) {
            let _ = parse(&text);
        }
    }
}
