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
