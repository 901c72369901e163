//! What part of its layer a silver or gold run rebuilds: what changed below it (the default),
//! everything (`--full-refresh`), or the partitions of a date range (`--from`/`--to`, for
//! backfills).

use chrono::{Datelike, NaiveDate};

/// The flags that choose a run's [`Scope`]. Flatten into the clap parser of silver and gold.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ScopeArgs {
    /// Rebuild the whole layer from the layer below, instead of only what changed since the
    /// last successful run
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub full_refresh: bool,

    /// Backfill from this month (YYYY-MM) or day (YYYY-MM-DD) on: rebuild only the partitions
    /// from here, each range replaced in one commit; tables partitioned by month rebuild whole months
    #[arg(long, value_name = "DATE", value_parser = first_day)]
    pub from: Option<NaiveDate>,

    /// Backfill up to this month (YYYY-MM) or day (YYYY-MM-DD), inclusive
    #[arg(long, value_name = "DATE", value_parser = last_day)]
    pub to: Option<NaiveDate>,
}

/// What a run rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only what the layer below added since this layer last consumed it.
    Changed,
    /// Everything, from the whole layer below.
    Full,
    /// The partitions of these days, inclusive; `None` is open-ended.
    Range(Option<NaiveDate>, Option<NaiveDate>),
}

impl ScopeArgs {
    pub fn scope(&self) -> Result<Scope, String> {
        if self.full_refresh {
            return Ok(Scope::Full);
        }
        match (self.from, self.to) {
            (None, None) => Ok(Scope::Changed),
            (Some(f), Some(t)) if f > t => Err(format!("--from {f} is after --to {t}")),
            (f, t) => Ok(Scope::Range(f, t)),
        }
    }
}

impl ScopeArgs {
    /// The scope, or a usage error (exit 2) in the words of the command `C`.
    pub fn resolve<C: clap::CommandFactory>(&self) -> Scope {
        self.scope().unwrap_or_else(|e| {
            C::command()
                .error(clap::error::ErrorKind::ArgumentConflict, e)
                .exit()
        })
    }
}

fn parse(s: &str) -> Result<(NaiveDate, bool), String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok((d, false));
    }
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .map(|d| (d, true))
        .map_err(|_| format!("'{s}' is not a month (YYYY-MM) or a day (YYYY-MM-DD)"))
}

fn first_day(s: &str) -> Result<NaiveDate, String> {
    parse(s).map(|(d, _)| d)
}

fn last_day(s: &str) -> Result<NaiveDate, String> {
    let (d, month) = parse(s)?;
    Ok(if month { end_of_month(d) } else { d })
}

fn end_of_month(d: NaiveDate) -> NaiveDate {
    let next = d
        .with_day(1)
        .and_then(|f| f.checked_add_months(chrono::Months::new(1)));
    next.and_then(|n| n.pred_opt()).unwrap_or(NaiveDate::MAX)
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of(d: NaiveDate) -> Self {
        Self {
            year: d.year(),
            month: d.month(),
        }
    }

    fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

/// Inclusive ranges of months: the partitions a run replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Months(pub Vec<(Option<Month>, Option<Month>)>);

impl Months {
    /// The months a date range touches.
    pub fn of_range(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Self {
        Self(vec![(from.map(Month::of), to.map(Month::of))])
    }

    /// Exactly these months.
    pub fn each(months: impl IntoIterator<Item = Month>) -> Self {
        Self(months.into_iter().map(|m| (Some(m), Some(m))).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// SQL predicate over integer year and month columns; `FALSE` when there are no months.
    pub fn predicate(&self, year: &str, month: &str) -> String {
        self.any(|(from, to)| {
            let mut parts = Vec::new();
            if let Some(f) = from {
                parts.push(format!(
                    "({year} > {y} OR ({year} = {y} AND {month} >= {m}))",
                    y = f.year,
                    m = f.month
                ));
            }
            if let Some(t) = to {
                parts.push(format!(
                    "({year} < {y} OR ({year} = {y} AND {month} <= {m}))",
                    y = t.year,
                    m = t.month
                ));
            }
            parts
        })
    }

    /// SQL predicate over an ISO-8601 text timestamp (`2009-05-04T23:08:57Z`), which sorts as
    /// text in time order: lets a scan skip files by their min/max statistics.
    pub fn text_predicate(&self, column: &str) -> String {
        self.any(|(from, to)| {
            let mut parts = Vec::new();
            if let Some(f) = from {
                parts.push(format!("{column} >= '{:04}-{:02}'", f.year, f.month));
            }
            if let Some(t) = to {
                let n = t.next();
                parts.push(format!("{column} < '{:04}-{:02}'", n.year, n.month));
            }
            parts
        })
    }

    fn any(&self, range: impl Fn(&(Option<Month>, Option<Month>)) -> Vec<String>) -> String {
        if self.0.is_empty() {
            return "FALSE".into();
        }
        let alternatives: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                let parts = range(r);
                if parts.is_empty() {
                    "TRUE".into()
                } else {
                    format!("({})", parts.join(" AND "))
                }
            })
            .collect();
        alternatives.join(" OR ")
    }
}

/// SQL predicate over a date column for a day range; `TRUE` when open at both ends.
pub fn days_predicate(column: &str, from: Option<NaiveDate>, to: Option<NaiveDate>) -> String {
    let mut parts = Vec::new();
    if let Some(f) = from {
        parts.push(format!("{column} >= DATE '{f}'"));
    }
    if let Some(t) = to {
        parts.push(format!("{column} <= DATE '{t}'"));
    }
    if parts.is_empty() {
        "TRUE".into()
    } else {
        parts.join(" AND ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from: Option<&str>, to: Option<&str>) -> Result<Scope, String> {
        ScopeArgs {
            full_refresh: false,
            from: from.map(first_day).transpose()?,
            to: to.map(last_day).transpose()?,
        }
        .scope()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn a_month_bound_covers_the_whole_month_and_a_day_bound_that_day() {
        assert_eq!(
            args(Some("2009-02"), Some("2009-02")),
            Ok(Scope::Range(
                Some(day("2009-02-01")),
                Some(day("2009-02-28"))
            ))
        );
        assert_eq!(
            args(Some("2008-12-31"), Some("2008-12")),
            Ok(Scope::Range(
                Some(day("2008-12-31")),
                Some(day("2008-12-31"))
            ))
        );
        assert_eq!(args(None, None), Ok(Scope::Changed));
    }

    #[test]
    fn a_range_that_ends_before_it_starts_or_a_bad_date_is_refused() {
        assert!(args(Some("2009-03"), Some("2009-02")).is_err());
        assert!(args(Some("2009-13"), None).is_err());
        assert!(args(Some("May 2009"), None).is_err());
    }

    #[test]
    fn month_predicates_select_the_months_of_the_range() {
        let months = Months::of_range(Some(day("2008-11-15")), Some(day("2009-02-01")));
        assert_eq!(
            months.predicate("year", "month"),
            "((year > 2008 OR (year = 2008 AND month >= 11)) AND (year < 2009 OR (year = 2009 AND month <= 2)))"
        );
        assert_eq!(
            months.text_predicate("ts"),
            "(ts >= '2008-11' AND ts < '2009-03')"
        );
        let december = Months::each([Month {
            year: 2008,
            month: 12,
        }]);
        assert_eq!(
            december.text_predicate("ts"),
            "(ts >= '2008-12' AND ts < '2009-01')"
        );
        assert_eq!(Months::each([]).predicate("y", "m"), "FALSE");
        assert_eq!(Months::of_range(None, None).predicate("y", "m"), "TRUE");
    }
}
