//! The calendar of the platform: China Standard Time (UTC+8, no daylight saving). "One declaration per day", "14
//! days since" and the midnight recheck all count days in it.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// China Standard Time (UTC+8, no daylight saving): the calendar of "one declaration per day".
pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC offset"))
}

pub fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&offset()).date_naive()
}

/// The start (00:00 China time) of `day`, as an instant.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_local_timezone(offset())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// The next midnight in China after `at`: when every "days ago" moves on by one.
pub fn next_midnight(at: DateTime<Utc>) -> DateTime<Utc> {
    start_of(day_of(at).succ_opt().unwrap_or(NaiveDate::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_turns_at_midnight_beijing_time() {
        let at: DateTime<Utc> = "2022-01-03T15:59:59Z".parse().expect("time");
        assert_eq!(day_of(at).to_string(), "2022-01-03");
        assert_eq!(next_midnight(at).to_rfc3339(), "2022-01-03T16:00:00+00:00");
        assert_eq!(day_of(next_midnight(at)).to_string(), "2022-01-04");
    }
}
