//! Times as a person reads them, in the store's time zone and the page's
//! language: "2 h 10 min", "9:40", "28/11 9:40". Pure: `now` is a parameter.

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;

/// A length of time, rounded down to the minute: "2 h 10 min", "45 min",
/// "3 h"; under a minute, "< 1 min".
pub(crate) fn duration(length: Duration) -> String {
    let minutes = length.num_minutes().max(0);
    match (minutes / 60, minutes % 60) {
        (0, 0) => "< 1 min".to_owned(),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An instant in `tz`: the time alone when it is on the same local day as
/// `now`, else with its date ("28/11 9:40" in French, "28 Nov 9:40" in
/// English), with the year when it is another year.
pub(crate) fn moment(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz, lang: &str) -> String {
    let local = at.with_timezone(&tz);
    let today = now.with_timezone(&tz).date_naive();
    let time = local.format("%-H:%M").to_string();
    if local.date_naive() == today {
        return time;
    }
    let same_year = local.year() == today.year();
    match (lang, same_year) {
        ("fr", true) => format!("{} {time}", local.format("%d/%m")),
        ("fr", false) => format!("{} {time}", local.format("%d/%m/%Y")),
        (_, true) => format!(
            "{} {} {time}",
            local.day(),
            MONTHS_EN[local.month0() as usize]
        ),
        (_, false) => format!(
            "{} {} {} {time}",
            local.day(),
            MONTHS_EN[local.month0() as usize],
            local.year()
        ),
    }
}

/// A full date and time in `tz` for a history line: "28/11/2026 9:40" or
/// "28 Nov 2026 9:40".
pub(crate) fn full(at: DateTime<Utc>, tz: Tz, lang: &str) -> String {
    let local = at.with_timezone(&tz);
    let time = local.format("%-H:%M");
    if lang == "fr" {
        format!("{} {time}", local.format("%d/%m/%Y"))
    } else {
        format!(
            "{} {} {} {time}",
            local.day(),
            MONTHS_EN[local.month0() as usize],
            local.year()
        )
    }
}

/// The first `words` words of `text`, with "…" when it was longer.
pub(crate) fn first_words(text: &str, words: usize) -> String {
    let mut parts = text.split_whitespace();
    let head: Vec<&str> = parts.by_ref().take(words).collect();
    let mut out = head.join(" ");
    if parts.next().is_some() {
        out.push('…');
    }
    out
}

/// A code as words, when no translation names it: `delivery_delay` →
/// "Delivery delay".
pub(crate) fn humanize(code: &str) -> String {
    let words = code.replace(['_', '-'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn durations_read_as_hours_and_minutes() {
        let table = [
            (0, "< 1 min"),
            (59, "< 1 min"),
            (60, "1 min"),
            (45 * 60, "45 min"),
            (3 * 3600, "3 h"),
            (2 * 3600 + 10 * 60 + 59, "2 h 10 min"),
            (26 * 3600 + 5 * 60, "26 h 05 min"),
            (-300, "< 1 min"),
        ];
        for (seconds, expected) in table {
            assert_eq!(duration(Duration::seconds(seconds)), expected, "{seconds}");
        }
    }

    #[test]
    fn moments_are_local_and_short() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let now = at("2026-11-30T15:00:00Z");
        let table = [
            ("2026-11-30T08:40:00Z", "fr", "9:40"),
            ("2026-11-30T08:40:00Z", "en", "9:40"),
            ("2026-11-28T08:40:00Z", "fr", "28/11 9:40"),
            ("2026-11-28T08:40:00Z", "en", "28 Nov 9:40"),
            // 23:30 UTC is already the next day in Paris.
            ("2026-11-30T23:30:00Z", "en", "1 Dec 0:30"),
            ("2025-12-31T08:00:00Z", "fr", "31/12/2025 9:00"),
            ("2025-12-31T08:00:00Z", "en", "31 Dec 2025 9:00"),
        ];
        for (instant, lang, expected) in table {
            assert_eq!(
                moment(at(instant), now, paris, lang),
                expected,
                "{instant} {lang}"
            );
        }
        assert_eq!(
            full(at("2026-07-01T12:05:00Z"), paris, "fr"),
            "01/07/2026 14:05"
        );
        assert_eq!(
            full(at("2026-07-01T12:05:00Z"), paris, "en"),
            "1 Jul 2026 14:05"
        );
    }

    #[test]
    fn texts_are_cut_and_codes_humanized() {
        assert_eq!(first_words("one two three", 2), "one two…");
        assert_eq!(first_words("  one   two ", 2), "one two");
        assert_eq!(first_words("", 5), "");
        assert_eq!(humanize("delivery_delay"), "Delivery delay");
        assert_eq!(humanize("in-store"), "In store");
        assert_eq!(humanize(""), "");
    }
}
