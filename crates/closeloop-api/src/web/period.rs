//! The period of a dashboard page: today, the last 7, 30 or 90 days, or
//! dates picked by the person; and the period just before it, for the
//! comparison. Pure: `now` and the day's start are passed.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A period `[from, to)` and its name in the page's links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `today`, `7d`, `30d`, `90d` or `custom`.
    pub name: String,
}

impl Period {
    /// The period asked: `name` (`today`, `7d`, `30d`, `90d`), or
    /// `from`/`to` dates (`YYYY-MM-DD`, `to` included) for `custom`.
    /// Unknown names and unreadable dates fall back to the last 30 days.
    pub fn parse(
        name: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
        day_start: DateTime<Utc>,
    ) -> Period {
        let date = |text: Option<&str>| {
            text.and_then(|t| NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        };
        let last = |days: i64, name: &str| Period {
            from: now - Duration::days(days),
            to: now,
            name: name.to_owned(),
        };
        match name.unwrap_or("30d") {
            "today" => Period {
                from: day_start,
                to: now,
                name: "today".into(),
            },
            "7d" => last(7, "7d"),
            "90d" => last(90, "90d"),
            "custom" => match (date(from), date(to)) {
                (Some(from), Some(to)) if to >= from => Period {
                    from,
                    to: to + Duration::days(1),
                    name: "custom".into(),
                },
                _ => last(30, "30d"),
            },
            _ => last(30, "30d"),
        }
    }

    /// The period of the same length just before.
    pub fn previous(&self) -> Period {
        let length = self.to - self.from;
        Period {
            from: self.from - length,
            to: self.from,
            name: self.name.clone(),
        }
    }

    /// The query of this period in links: `period=7d`, or the dates.
    pub fn query(&self) -> String {
        if self.name == "custom" {
            format!(
                "period=custom&from={}&to={}",
                self.from.format("%Y-%m-%d"),
                (self.to - Duration::days(1)).format("%Y-%m-%d")
            )
        } else {
            format!("period={}", self.name)
        }
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
    fn periods_by_name_and_by_dates() {
        let now = at("2026-12-01T15:00:00Z");
        let day = at("2026-11-30T23:00:00Z");
        let table = [
            (Some("today"), None, None, day, now, "today"),
            (
                Some("7d"),
                None,
                None,
                at("2026-11-24T15:00:00Z"),
                now,
                "7d",
            ),
            (None, None, None, at("2026-11-01T15:00:00Z"), now, "30d"),
            (
                Some("nonsense"),
                None,
                None,
                at("2026-11-01T15:00:00Z"),
                now,
                "30d",
            ),
            (
                Some("custom"),
                Some("2026-11-02"),
                Some("2026-11-03"),
                at("2026-11-02T00:00:00Z"),
                at("2026-11-04T00:00:00Z"),
                "custom",
            ),
            // Backwards or unreadable dates: the default.
            (
                Some("custom"),
                Some("2026-11-05"),
                Some("2026-11-03"),
                at("2026-11-01T15:00:00Z"),
                now,
                "30d",
            ),
            (
                Some("custom"),
                Some("yesterday"),
                Some("2026-11-03"),
                at("2026-11-01T15:00:00Z"),
                now,
                "30d",
            ),
        ];
        for (name, from, to, start, end, called) in table {
            let period = Period::parse(name, from, to, now, day);
            assert_eq!(
                (period.from, period.to, period.name.as_str()),
                (start, end, called),
                "{name:?}"
            );
        }
        let custom = Period::parse(
            Some("custom"),
            Some("2026-11-02"),
            Some("2026-11-03"),
            now,
            day,
        );
        assert_eq!(
            custom.query(),
            "period=custom&from=2026-11-02&to=2026-11-03"
        );
        let previous = custom.previous();
        assert_eq!(
            (previous.from, previous.to),
            (at("2026-10-31T00:00:00Z"), at("2026-11-02T00:00:00Z"))
        );
    }
}
