//! Times on the command line (`--at`, `--to-time`: RFC 3339 or epoch seconds) and durations in
//! progress lines (`1m44s`).

/// A point in time as epoch seconds and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

impl Instant {
    pub fn to_sdk(self) -> aws_sdk_dynamodb::primitives::DateTime {
        aws_sdk_dynamodb::primitives::DateTime::from_secs_and_nanos(self.secs, self.nanos)
    }
}

/// Parses `2026-12-05T14:02:31Z`, `2026-12-05T14:02:31.250+01:00` (RFC 3339; `t`/`z` and a space
/// for `T` accepted) or epoch seconds (`1764943351`, `1764943351.25`).
pub fn parse_time(text: &str) -> Result<Instant, String> {
    let text = text.trim();
    let bad = || {
        format!("invalid time {text:?}: expected RFC 3339 (2026-12-05T14:02:31Z) or epoch seconds")
    };
    if text.is_empty() {
        return Err(bad());
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() || whole.len() > 12 || frac.contains('.') {
            return Err(bad());
        }
        let secs: i64 = whole.parse().map_err(|_| bad())?;
        let nanos = parse_fraction(frac).ok_or_else(bad)?;
        return Ok(Instant { secs, nanos });
    }
    parse_rfc3339(text).ok_or_else(bad)
}

/// Nanoseconds of the digits after a decimal point (at most 9 digits).
fn parse_fraction(frac: &str) -> Option<u32> {
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits = frac.to_owned();
    while digits.len() < 9 {
        digits.push('0');
    }
    digits.parse().ok()
}

fn number(s: &str, digits: usize) -> Option<i64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_rfc3339(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = number(text.get(0..4)?, 4)?;
    let month = number(text.get(5..7)?, 2)?;
    let day = number(text.get(8..10)?, 2)?;
    let hour = number(text.get(11..13)?, 2)?;
    let minute = number(text.get(14..16)?, 2)?;
    let second = number(text.get(17..19)?, 2)?;
    let mut rest = text.get(19..)?;
    let mut nanos = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if end == 0 {
            return None;
        }
        nanos = parse_fraction(&r[..end])?;
        rest = &r[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = number(&rest[1..3], 2)?;
            let om = number(&rest[4..6], 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // A leap second is the last second of its minute.
    let second = second.min(59);
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(Instant { secs, nanos })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `44s`, `1m44s`, `2h03m`.
pub fn format_duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// RFC 3339 (UTC, whole seconds) of a point in time, for names and listings.
pub fn format_time(t: &aws_sdk_dynamodb::primitives::DateTime) -> String {
    t.fmt(aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms() {
        let t = |s| parse_time(s).unwrap();
        assert_eq!(t("0"), Instant { secs: 0, nanos: 0 });
        assert_eq!(
            t("1764943351.25"),
            Instant {
                secs: 1_764_943_351,
                nanos: 250_000_000
            }
        );
        assert_eq!(t("1970-01-01T00:00:00Z").secs, 0);
        assert_eq!(t("2026-12-05T14:02:31Z").secs, 1_796_479_351);
        assert_eq!(t("2026-12-05T15:02:31+01:00").secs, 1_796_479_351);
        assert_eq!(t("2026-12-05 13:02:31.5-01:00").nanos, 500_000_000);
        assert_eq!(t("2024-02-29T00:00:00z").secs, 1_709_164_800);
    }

    #[test]
    fn rejected_forms() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T14:02:31",
            "2026-12-05T14:02:31.Z",
            "2026-12-05T14:02:31+1:00",
            "1.2.3",
            ".5",
            "12345678901234567890",
            "2026-12-05T14:02:31.1234567891Z",
        ] {
            assert!(parse_time(s).is_err(), "{s}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(44), "44s");
        assert_eq!(format_duration(104), "1m44s");
        assert_eq!(format_duration(7380), "2h03m");
    }

    proptest! {
        /// Whatever the SDK formats as RFC 3339 parses back to the same second.
        #[test]
        fn rfc3339_round_trip(secs in 0i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let dt = aws_sdk_dynamodb::primitives::DateTime::from_secs_and_nanos(secs, nanos);
            let text = dt.fmt(aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime).unwrap();
            let parsed = parse_time(&text).unwrap();
            prop_assert_eq!(parsed.secs, secs);
            let epoch = parse_time(&format!("{secs}")).unwrap();
            prop_assert_eq!(epoch.secs, secs);
        }

        /// Arbitrary text never panics.
        #[test]
        fn arbitrary_text(s in ".{0,40}") {
            let _ = parse_time(&s);
        }

        /// Offsets shift the instant by exactly their amount.
        #[test]
        fn offsets(secs in 86_400i64..4_000_000_000, oh in 0i64..24, om in 0i64..60) {
            let dt = aws_sdk_dynamodb::primitives::DateTime::from_secs(secs);
            let utc = dt.fmt(aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime).unwrap();
            let base = utc.trim_end_matches('Z');
            let shifted = parse_time(&format!("{base}+{oh:02}:{om:02}")).unwrap();
            prop_assert_eq!(shifted.secs, secs - oh * 3600 - om * 60);
        }
    }
}
