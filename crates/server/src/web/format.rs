//! Text the pages and exports share: UTC times from Unix milliseconds (integer arithmetic), CSV
//! cells and query strings.

/// `(year, month, day, hour, minute, second)` of Unix milliseconds, proleptic Gregorian.
fn civil(ms: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Unix days of a proleptic Gregorian date (the inverse of [`civil`]'s date).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Unix ms of 00:00 UTC on `YYYY-MM-DD` (years 1970–9999); `None` for anything else.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape =
        |(i, c): (usize, &u8)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() };
    if b.len() != 10 || !b.iter().enumerate().all(shape) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let last = days_in_month.get(usize::try_from(m - 1).ok()?)?;
    if d < 1 || d > *last {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000)
}

/// `YYYY-MM-DD` (UTC).
pub fn date(ms: i64) -> String {
    let (y, mo, d, ..) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `YYYY-MM` (UTC) and the Unix ms of that month's first day.
pub fn month(ms: i64) -> (String, i64) {
    let (y, mo, ..) = civil(ms);
    (format!("{y:04}-{mo:02}"), days_from_civil(y, mo, 1) * 86_400_000)
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn utc(ms: i64) -> String {
    let (y, mo, d, h, mi, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), for history tables.
pub fn utc_seconds(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// RFC 3339 with milliseconds, `2026-11-30T05:32:36.123Z`, for exports.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", ms.rem_euclid(1000))
}

/// One CSV record (RFC 4180, CRLF). A text cell that a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@` first, and not a number) gets a leading `'`.
pub fn csv_record(out: &mut String, cells: &[&str]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let formula = cell.starts_with(['=', '+', '-', '@'])
            && !cell[1..].chars().all(|c| c.is_ascii_digit() || c == '.');
        let quote = formula || cell.contains([',', '"', '\n', '\r']);
        if quote {
            out.push('"');
            if formula {
                out.push('\'');
            }
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
}

/// Percent-encodes a query value (everything but unreserved characters and `/`).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&...` with the empty values left out.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if query.is_empty() { path.to_string() } else { format!("{path}?{}", query.join("&")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_435_200_000), "2026-11-23 12:00 UTC");
        assert_eq!(utc(-60_000), "1969-12-31 23:59 UTC");
        assert_eq!(utc_seconds(1_795_435_201_999), "2026-11-23 12:00:01");
        assert_eq!(rfc3339(1_795_435_201_007), "2026-11-23T12:00:01.007Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn dates_read_back() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_date("2026-11-23"), Some(1_795_392_000_000));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "2026-+1-01",
            "26-11-23",
            "",
            "x",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(date(1_795_435_200_000), "2026-11-23");
        assert_eq!(month(1_795_435_200_000), ("2026-11".into(), parse_date("2026-11-01").unwrap()));
    }

    #[test]
    fn csv_cells() {
        let mut out = String::new();
        csv_record(&mut out, &["a", "b,c", "say \"hi\"", "-1.5", "=cmd()", "-x", "@SUM", ""]);
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\",-1.5,\"'=cmd()\",\"'-x\",\"'@SUM\",\r\n");
    }

    #[test]
    fn queries() {
        assert_eq!(with_query("/a", &[("m", "BTC-USDT"), ("s", "")]), "/a?m=BTC-USDT");
        assert_eq!(with_query("/a", &[]), "/a");
        assert_eq!(encode("/x?y=1&z"), "/x%3Fy%3D1%26z");
    }
}
