//! Which backups to keep: the newest of each of the last `daily` days that have one, the
//! newest of each of the last `weekly` ISO weeks (Monday to Sunday, UTC) that have one, and
//! always the newest of all.

use std::collections::BTreeSet;

const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub daily: u32,
    pub weekly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { daily: 7, weekly: 4 }
    }
}

impl Retention {
    /// The names among `backups` (name, Unix ms taken) that this policy no longer keeps.
    pub fn expired(&self, backups: &[(String, i64)]) -> Vec<String> {
        let mut newest_first: Vec<&(String, i64)> = backups.iter().collect();
        newest_first.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        let mut keep: BTreeSet<&str> = BTreeSet::new();
        if let Some((name, _)) = newest_first.first() {
            keep.insert(name);
        }
        let day = |ms: i64| ms.div_euclid(DAY_MS);
        // 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday.
        let week = |ms: i64| (day(ms) + 3).div_euclid(7);
        for (count, period) in [(self.daily, &day as &dyn Fn(i64) -> i64), (self.weekly, &week)] {
            let mut periods = BTreeSet::new();
            for (name, at) in &newest_first {
                if periods.len() >= count as usize {
                    break;
                }
                if periods.insert(period(*at)) {
                    keep.insert(name);
                }
            }
        }
        newest_first
            .iter()
            .filter(|(name, _)| !keep.contains(name.as_str()))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn keeps_the_newest_per_day_and_per_week() {
        // Monday 2026-11-30 00:00 UTC.
        let monday = 1_795_996_800_000;
        assert_eq!((monday / DAY_MS + 3) % 7, 0);
        // Two backups a day (06:00 and 18:00) for 30 days.
        let backups: Vec<(String, i64)> = (0..60)
            .map(|i| {
                let at = monday - 30 * DAY_MS + 6 * HOUR + i * 12 * HOUR;
                (format!("b{i:02}"), at)
            })
            .collect();
        let policy = Retention { daily: 3, weekly: 2 };
        let expired = policy.expired(&backups);
        let kept: Vec<&str> = backups
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !expired.iter().any(|e| e == n))
            .collect();
        // The newest three days' evening backups; the newest of this week is among them, and
        // last week's newest is its Sunday evening one.
        assert_eq!(kept, ["b45", "b55", "b57", "b59"]);
        assert_eq!(expired.len(), 56);
        // Nothing kept by count alone: the newest survives a policy of zero.
        let none = Retention { daily: 0, weekly: 0 }.expired(&backups);
        assert_eq!(none.len(), 59);
        assert!(!none.contains(&"b59".to_string()));
        assert!(Retention::default().expired(&[]).is_empty());
    }
}
