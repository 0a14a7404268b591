//! Cron schedules as merchants write them.
//!
//! The `cron` crate wants seconds first (6 or 7 fields) and numbers weekdays 1–7 from Sunday;
//! merchants know the classic 5-field form with weekdays 0–7 (0 and 7 are Sunday). A 5-field
//! schedule is therefore translated: `0` seconds are prepended and the weekday field is rewritten
//! with day names, so `0 3 * * 1` runs on Mondays as classic cron would. 6/7-field schedules and
//! the `@daily`-style shorthands go to the crate unchanged, with its own numbering.
//!
//! One classic rule cannot be translated: when both day-of-month and weekday are restricted,
//! classic cron runs when *either* matches, the crate when *both* do. Such a 5-field schedule is
//! refused with that explanation rather than run on the wrong days.

use std::str::FromStr;

/// Day names in classic order, Sunday = 0; the crate accepts them in any case.
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses a schedule written in the 5-field form (`*/5 * * * *`), the `cron` crate's 6/7-field
/// form (`0 */5 * * * *`), or a shorthand (`@hourly`). The error completes "is not a valid
/// schedule: …".
pub fn parse_schedule(text: &str) -> Result<cron::Schedule, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    let expression = match fields.len() {
        1 if text.starts_with('@') => text.to_owned(),
        5 => {
            let (day_of_month, weekday) = (fields[2], fields[4]);
            if is_restricted(day_of_month) && is_restricted(weekday) {
                return Err(format!(
                    "it restricts both the day of month ({day_of_month}) and the weekday \
                     ({weekday}); classic cron runs when either matches, omnistock only when \
                     both do, so restrict just one of them"
                ));
            }
            let weekday = classic_weekdays(weekday)?;
            format!(
                "0 {} {} {} {} {weekday}",
                fields[0], fields[1], fields[2], fields[3]
            )
        }
        6 | 7 => fields.join(" "),
        n => {
            return Err(format!(
                "it has {n} fields; expected 5 (minute hour day-of-month month weekday), or 6–7 \
                 with seconds first and an optional year last"
            ));
        }
    };
    cron::Schedule::from_str(&expression).map_err(|e| {
        let reason = e.to_string();
        let reason = reason.lines().next().unwrap_or("").trim();
        if reason.is_empty() {
            "the cron parser rejected it".to_owned()
        } else {
            reason.to_owned()
        }
    })
}

fn is_restricted(field: &str) -> bool {
    field != "*" && field != "?"
}

/// Rewrites a classic weekday field (0–7, Sunday = 0 or 7, names, ranges, lists, steps) as the
/// list of day names it means, which the crate reads unambiguously.
fn classic_weekdays(field: &str) -> Result<String, String> {
    if !is_restricted(field) {
        return Ok(field.to_owned());
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let bad = || {
            format!(
                "weekday `{part}` is not valid: use 0–7 (0 and 7 are Sunday), names such as \
                 MON, ranges such as 1-5, lists and /steps"
            )
        };
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: usize = step.parse().ok().filter(|s| *s > 0).ok_or_else(bad)?;
                (range, step)
            }
            None => (part, 1),
        };
        let (first, last) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (weekday(a).ok_or_else(bad)?, weekday(b).ok_or_else(bad)?)
        } else {
            let day = weekday(range).ok_or_else(bad)?;
            // `5/2` means "from Friday, every second day" in the classic dialects that take it.
            (day, if part.contains('/') { 6 } else { day })
        };
        // `5-7` is Friday to Sunday; a range may end on 7 but not run backwards.
        if first > last {
            return Err(bad());
        }
        for day in (first..=last).step_by(step) {
            days[day % 7] = true;
        }
    }
    let names: Vec<&str> = (0..7).filter(|d| days[*d]).map(|d| DAY_NAMES[d]).collect();
    Ok(names.join(","))
}

/// A classic weekday: 0–7 or a three-letter name, as 0–7.
fn weekday(s: &str) -> Option<usize> {
    if let Ok(n) = s.parse::<usize>() {
        return (n <= 7).then_some(n);
    }
    DAY_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Timelike, Utc, Weekday};

    use super::*;

    fn next_runs(text: &str, n: usize) -> Vec<chrono::DateTime<Utc>> {
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 30).unwrap(); // a Monday
        parse_schedule(text)
            .unwrap()
            .after(&start)
            .take(n)
            .collect()
    }

    #[test]
    fn five_fields_run_on_the_minute() {
        let runs = next_runs("*/15 * * * *", 2);
        assert_eq!((runs[0].minute(), runs[0].second()), (15, 0));
        assert_eq!((runs[1].minute(), runs[1].second()), (30, 0));
    }

    #[test]
    fn six_and_seven_fields_and_shorthands_pass_through() {
        assert_eq!(next_runs("30 * * * * *", 1)[0].second(), 30);
        assert!(parse_schedule("0 0 3 * * * 2027").is_ok());
        assert_eq!(next_runs("@daily", 1)[0].hour(), 0);
    }

    #[test]
    fn classic_weekday_numbers_mean_what_classic_cron_means() {
        assert_eq!(next_runs("0 3 * * 1", 1)[0].weekday(), Weekday::Mon);
        assert_eq!(next_runs("0 3 * * 0", 1)[0].weekday(), Weekday::Sun);
        assert_eq!(next_runs("0 3 * * 7", 1)[0].weekday(), Weekday::Sun);
        let weekend: Vec<_> = next_runs("0 3 * * 6-7", 2)
            .iter()
            .map(|d| d.weekday())
            .collect();
        assert_eq!(weekend, [Weekday::Sat, Weekday::Sun]);
        let weekdays: Vec<_> = next_runs("0 3 * * mon-fri", 5)
            .iter()
            .map(|d| d.weekday())
            .collect();
        assert_eq!(
            weekdays,
            [
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Mon
            ]
        );
    }

    #[test]
    fn weekday_fields_translate_to_names() {
        assert_eq!(classic_weekdays("1-5").unwrap(), "MON,TUE,WED,THU,FRI");
        assert_eq!(classic_weekdays("*/2").unwrap(), "SUN,TUE,THU,SAT");
        assert_eq!(classic_weekdays("0,7").unwrap(), "SUN");
        assert_eq!(classic_weekdays("5/1").unwrap(), "FRI,SAT");
        assert_eq!(classic_weekdays("?").unwrap(), "?");
        for bad in ["8", "5-1", "x", "1/0", "1-", ""] {
            assert!(classic_weekdays(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_what_would_run_on_the_wrong_days_or_never_parse() {
        assert!(parse_schedule("0 3 1 * 1").unwrap_err().contains("either"));
        assert!(parse_schedule("").unwrap_err().contains("empty"));
        assert!(parse_schedule("* * * *").unwrap_err().contains("4 fields"));
        assert!(parse_schedule("every day").is_err());
        assert!(parse_schedule("61 * * * *").is_err());
    }
}
