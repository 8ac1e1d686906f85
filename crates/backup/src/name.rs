//! Backup names: `bourse-YYYYMMDDTHHMMSS.mmmZ-s<seq>`, so a listing sorts by time and a name
//! says when it was taken without opening it.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

const PREFIX: &str = "bourse-";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%S";

/// The name of a backup taken at `at_ms` (Unix milliseconds) of the state at `seq`.
pub fn backup_name(at_ms: i64, seq: u64) -> String {
    let time = Timestamp::from_millisecond(at_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let seconds = time.to_zoned(TimeZone::UTC).strftime(TIME_FORMAT).to_string();
    format!("{PREFIX}{seconds}.{:03}Z-s{seq}", at_ms.rem_euclid(1000))
}

/// `(Unix ms, seq)` of a backup name; `None` if it is not one.
pub fn parse_backup_name(name: &str) -> Option<(i64, u64)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (time, seq) = rest.split_once("-s")?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq = seq.parse().ok()?;
    let (seconds, millis) = time.strip_suffix('Z')?.split_once('.')?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let civil = DateTime::strptime(TIME_FORMAT, seconds).ok()?;
    let ms = TimeZone::UTC.to_timestamp(civil).ok()?.as_millisecond();
    Some((ms + millis.parse::<i64>().ok()?, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_to_the_millisecond() {
        let at = 1_796_000_123_456; // 2026-11-30
        let name = backup_name(at, 42);
        assert_eq!(name, "bourse-20261130T005523.456Z-s42");
        assert_eq!(parse_backup_name(&name), Some((at, 42)));
        for bad in [
            "bourse-20261130T051523.000Z",
            "x-20261130T051523.000Z-s1",
            "bourse-2026-s1",
            "bourse-20261130T051523.000Z-s",
            "bourse-20261130T051523Z-s1",
            "bourse-20261130T051523.1Z-s1",
        ] {
            assert_eq!(parse_backup_name(bad), None, "{bad}");
        }
    }
}
