//! Calendar arithmetic for signing times: ISO 8601 basic format (`YYYYMMDDTHHMMSSZ`) both ways,
//! RFC 1123 through `httpdate`, and `SystemTime` as signed seconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrodyn_model::calendar::{civil_from_days, days_from_civil};

/// Seconds since 1970-01-01T00:00:00Z, negative before it.
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            // Round towards negative infinity so that a sub-second instant before the epoch is
            // still "before" 0.
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                whole.saturating_neg().saturating_sub(1)
            } else {
                whole.saturating_neg()
            }
        }
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')),
    )
}

/// Parses exactly `YYYYMMDDTHHMMSSZ` (16 ASCII characters) into Unix seconds.
pub(crate) fn parse_iso8601_basic(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = i64::from(digits(&b[0..4])?);
    let month = digits(&b[4..6])?;
    let day = digits(&b[6..8])?;
    let hour = i64::from(digits(&b[9..11])?);
    let minute = i64::from(digits(&b[11..13])?);
    let second = i64::from(digits(&b[13..15])?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Parses an HTTP `Date` header (RFC 1123, or the obsolete RFC 850 and asctime forms).
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    httpdate::parse_http_date(s).ok().map(unix_seconds)
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_iso8601_basic(t: i64) -> String {
    let bytes = iso8601_basic(t);
    // Every byte is an ASCII digit, `T` or `Z`.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// [`format_iso8601_basic`] as bytes, digit by digit: this runs on every request.
pub(crate) fn iso8601_basic(t: i64) -> [u8; 16] {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = [0u8; 16];
    let put = |out: &mut [u8], v: i64| {
        let mut v = v;
        for slot in out.iter_mut().rev() {
            *slot = b'0' + v.rem_euclid(10) as u8;
            v /= 10;
        }
    };
    put(&mut out[0..4], y);
    put(&mut out[4..6], i64::from(m));
    put(&mut out[6..8], i64::from(d));
    out[8] = b'T';
    put(&mut out[9..11], secs / 3_600);
    put(&mut out[11..13], secs / 60 % 60);
    put(&mut out[13..15], secs % 60);
    out[15] = b'Z';
    out
}

/// How DynamoDB words a tolerance in its expiry messages: "15 min." (or seconds when the
/// tolerance is not a whole number of minutes, which only a presigned `X-Amz-Expires` can give).
pub(crate) fn describe_tolerance(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(60) {
        format!("{} min.", s / 60)
    } else {
        format!("{s} sec.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_eras() {
        for t in [
            0i64,
            -1,
            86_399,
            951_782_400, // 2000-02-29
            1_440_938_160,
            32_503_680_000, // 3000-01-01
            253_402_300_799,
        ] {
            let s = format_iso8601_basic(t);
            assert_eq!(parse_iso8601_basic(&s), Some(t), "{s}");
        }
        assert_eq!(format_iso8601_basic(1_440_938_160), "20150830T123600Z");
        assert_eq!(format_iso8601_basic(-1), "19691231T235959Z");
    }

    #[test]
    fn rejects_malformed_basic_dates() {
        for s in [
            "",
            "201",
            "20150830T123600",
            "20150830 123600Z",
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "+0150830T123600Z",
            "2015083０T12360Z",
        ] {
            assert_eq!(parse_iso8601_basic(s), None, "{s:?}");
        }
        assert!(parse_iso8601_basic("20160229T000000Z").is_some());
        assert!(parse_iso8601_basic("21000229T000000Z").is_none());
        assert!(parse_iso8601_basic("30200101T010101Z").is_some());
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(1_440_938_160)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn system_time_before_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(unix_seconds(t), -2);
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(7)), 7);
    }

    #[test]
    fn tolerances() {
        assert_eq!(describe_tolerance(Duration::from_secs(900)), "15 min.");
        assert_eq!(describe_tolerance(Duration::from_secs(61)), "61 sec.");
    }
}
