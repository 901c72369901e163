//! What part of its layer a silver or gold run rebuilds: what changed below it (the default),
//! everything (`--full-refresh`), or the partitions of a date range (`--from`/`--to`, for
//! backfills).

use chrono::{Datelike, NaiveDate};
use datafusion::logical_expr::Expr;
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;

use crate::lease::Hold;

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

impl Scope {
    /// What a run of this scope writes, for its lease: a backfill its days, others everything.
    pub fn hold(&self) -> Hold {
        match *self {
            Scope::Range(from, to) => Hold::Days { from, to },
            Scope::Changed | Scope::Full => Hold::All,
        }
    }
}

/// Part `index` of `count` (`--shard 2/4`, `--part 0/8`): one of `count` runs that together do
/// what one run does, each on its own share, at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Part {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a part: write i/N, 0 <= i < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Part { index, count })
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Part {
    /// The lease of a part: parts of one split are disjoint, everything else overlaps them.
    pub fn hold(&self) -> Hold {
        Hold::Shard {
            index: self.index,
            count: self.count,
        }
    }
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
    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

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

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A unit a run replaces partitions by: a month or a day.
pub trait Unit: Copy + Ord + std::fmt::Display {
    /// The words for all of them, for an open range.
    const ALL: &'static str;
}

impl Unit for Month {
    const ALL: &'static str = "every month";
}

impl Unit for NaiveDate {
    const ALL: &'static str = "every day";
}

/// Inclusive ranges of months or days (`None`: open-ended): the partitions a run replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges<T>(pub Vec<(Option<T>, Option<T>)>);

/// Ranges of months: the partitions of month-partitioned tables a run replaces.
pub type Months = Ranges<Month>;

/// Ranges of days: the rows of daily tables a run replaces.
pub type Days = Ranges<NaiveDate>;

impl<T: Unit> Ranges<T> {
    /// One range.
    pub fn of_range(from: Option<T>, to: Option<T>) -> Self {
        Self(vec![(from, to)])
    }

    /// Exactly these, sorted.
    pub fn each(units: impl IntoIterator<Item = T>) -> Self {
        let mut units: Vec<T> = units.into_iter().collect();
        units.sort();
        units.dedup();
        Self(units.into_iter().map(|u| (Some(u), Some(u))).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The one range that holds them all: from the earliest start to the latest end, each
    /// `None` (open) when a range is open on that side; `None` when there are no ranges.
    pub fn span(&self) -> Option<(Option<T>, Option<T>)> {
        if self.0.is_empty() {
            return None;
        }
        let from: Option<Vec<T>> = self.0.iter().map(|r| r.0).collect();
        let to: Option<Vec<T>> = self.0.iter().map(|r| r.1).collect();
        Some((
            from.and_then(|f| f.into_iter().min()),
            to.and_then(|t| t.into_iter().max()),
        ))
    }

    /// Any of the ranges, each the conjunction of the parts `range` gives for its bounds;
    /// `false` when there are none.
    fn any(&self, range: impl Fn(Option<T>, Option<T>) -> Vec<Expr>) -> Expr {
        self.0
            .iter()
            .map(|(from, to)| {
                range(*from, *to)
                    .into_iter()
                    .reduce(Expr::and)
                    .unwrap_or(lit(true))
            })
            .reduce(Expr::or)
            .unwrap_or(lit(false))
    }
}

impl Months {
    /// The months a date range touches.
    pub fn of_days(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Self {
        Self::of_range(from.map(Month::of), to.map(Month::of))
    }

    /// The rows whose `year` and `month` (integer expressions, e.g. partition columns) fall in
    /// these months.
    pub fn predicate(&self, year: Expr, month: Expr) -> Expr {
        self.any(|from, to| {
            let mut parts = Vec::new();
            if let Some(f) = from {
                let (y, m) = (lit(f.year), lit(f.month as i32));
                parts.push(
                    year.clone()
                        .gt(y.clone())
                        .or(year.clone().eq(y).and(month.clone().gt_eq(m))),
                );
            }
            if let Some(t) = to {
                let (y, m) = (lit(t.year), lit(t.month as i32));
                parts.push(
                    year.clone()
                        .lt(y.clone())
                        .or(year.clone().eq(y).and(month.clone().lt_eq(m))),
                );
            }
            parts
        })
    }

    /// The rows whose `column`, an ISO-8601 text time (`2009-05-04T23:08:57Z`, which sorts as
    /// text in time order), falls in these months: lets a scan skip files by their min/max
    /// statistics.
    pub fn text_predicate(&self, column: &str) -> Expr {
        self.any(|from, to| {
            let mut parts = Vec::new();
            if let Some(f) = from {
                parts.push(col(column).gt_eq(lit(f.to_string())));
            }
            if let Some(t) = to {
                parts.push(col(column).lt(lit(t.next().to_string())));
            }
            parts
        })
    }
}

impl Days {
    /// The rows whose date `day` falls in these days.
    pub fn predicate(&self, day: Expr) -> Expr {
        let date = |d: NaiveDate| {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            lit(ScalarValue::Date32(
                i32::try_from((d - epoch).num_days()).ok(),
            ))
        };
        self.any(|from, to| {
            [
                from.map(|f| day.clone().gt_eq(date(f))),
                to.map(|t| day.clone().lt_eq(date(t))),
            ]
            .into_iter()
            .flatten()
            .collect()
        })
    }

    /// The rows whose `column`, an ISO-8601 text time or date (`2021-12-01`), falls in these
    /// days: lets a scan skip files by their min/max statistics.
    pub fn text_predicate(&self, column: &str) -> Expr {
        self.any(|from, to| {
            let mut parts = Vec::new();
            if let Some(f) = from {
                parts.push(col(column).gt_eq(lit(f.to_string())));
            }
            if let Some(t) = to.and_then(|t| t.succ_opt()) {
                parts.push(col(column).lt(lit(t.to_string())));
            }
            parts
        })
    }
}

impl<T: Unit> std::fmt::Display for Ranges<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> = self
            .0
            .iter()
            .map(|range| match range {
                (Some(a), Some(b)) if a == b => a.to_string(),
                (Some(a), Some(b)) => format!("{a} to {b}"),
                (Some(a), None) => format!("{a} onwards"),
                (None, Some(b)) => format!("up to {b}"),
                (None, None) => T::ALL.into(),
            })
            .collect();
        write!(f, "{}", ranges.join(", "))
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
    fn the_span_of_ranges_runs_from_the_earliest_start_to_the_latest_end() {
        let each = Days::each([day("2009-03-08"), day("2008-07-06"), day("2009-03-01")]);
        assert_eq!(
            each.span(),
            Some((Some(day("2008-07-06")), Some(day("2009-03-08"))))
        );
        let open = Ranges(vec![
            (Some(day("2008-01-01")), None),
            (Some(day("2007-01-01")), Some(day("2007-02-01"))),
        ]);
        assert_eq!(open.span(), Some((Some(day("2007-01-01")), None)));
        assert_eq!(Days::each([]).span(), None, "no ranges span nothing");
    }

    #[test]
    fn a_part_is_i_of_n_with_i_below_n() {
        assert_eq!("2/4".parse(), Ok(Part { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "2", "a/4", "-1/4"] {
            assert!(bad.parse::<Part>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_range_that_ends_before_it_starts_or_a_bad_date_is_refused() {
        assert!(args(Some("2009-03"), Some("2009-02")).is_err());
        assert!(args(Some("2009-13"), None).is_err());
        assert!(args(Some("May 2009"), None).is_err());
    }

    /// The rows of `rows` (year, month, ISO text time) a predicate keeps, as `year-month`.
    async fn kept(predicate: Expr) -> Vec<String> {
        use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let months = [
            (2008, 10),
            (2008, 11),
            (2008, 12),
            (2009, 1),
            (2009, 2),
            (2009, 3),
        ];
        let schema = Schema::new(vec![
            Field::new("year", DataType::Int32, false),
            Field::new("month", DataType::Int32, false),
            Field::new("ts", DataType::Utf8, false),
        ]);
        let batch = RecordBatch::try_new(
            std::sync::Arc::new(schema),
            vec![
                std::sync::Arc::new(Int32Array::from_iter_values(months.iter().map(|m| m.0))),
                std::sync::Arc::new(Int32Array::from_iter_values(months.iter().map(|m| m.1))),
                std::sync::Arc::new(StringArray::from_iter_values(
                    months
                        .iter()
                        .map(|(y, m)| format!("{y:04}-{m:02}-15T12:00:00Z")),
                )),
            ],
        )
        .expect("batch");
        let ctx = datafusion::prelude::SessionContext::new();
        let df = ctx.read_batch(batch).and_then(|df| df.filter(predicate));
        let rows = df.expect("filter").collect().await.expect("collect");
        rows.iter()
            .flat_map(|b| {
                let ts = b.column(2).as_any().downcast_ref::<StringArray>().cloned();
                (0..b.num_rows())
                    .filter_map(move |i| ts.as_ref().map(|t| t.value(i)[..7].to_string()))
            })
            .collect()
    }

    #[tokio::test]
    async fn month_predicates_select_the_months_of_the_range() {
        let months = Months::of_days(Some(day("2008-11-15")), Some(day("2009-02-01")));
        let all = ["2008-11", "2008-12", "2009-01", "2009-02"];
        assert_eq!(kept(months.predicate(col("year"), col("month"))).await, all);
        assert_eq!(kept(months.text_predicate("ts")).await, all);
        assert_eq!(months.to_string(), "2008-11 to 2009-02");
        let each = Months::each([
            Month {
                year: 2008,
                month: 12,
            },
            Month {
                year: 2009,
                month: 3,
            },
        ]);
        assert_eq!(
            kept(each.text_predicate("ts")).await,
            ["2008-12", "2009-03"]
        );
        assert_eq!(
            kept(each.predicate(col("year"), col("month"))).await,
            ["2008-12", "2009-03"]
        );
        assert_eq!(each.to_string(), "2008-12, 2009-03");
        assert!(
            kept(Months::each([]).predicate(col("year"), col("month")))
                .await
                .is_empty()
        );
        assert_eq!(
            kept(Months::of_range(None, None).text_predicate("ts"))
                .await
                .len(),
            6
        );
        let open = Months::of_days(None, Some(day("2008-11-02")));
        assert_eq!(
            kept(open.text_predicate("ts")).await,
            ["2008-10", "2008-11"]
        );
    }

    #[tokio::test]
    async fn day_ranges_select_and_say_their_days() {
        let days = Days::of_range(Some(day("2008-11-15")), Some(day("2009-01-15")));
        assert_eq!(
            kept(days.text_predicate("ts")).await,
            ["2008-11", "2008-12", "2009-01"]
        );
        assert_eq!(days.to_string(), "2008-11-15 to 2009-01-15");
        let each = Days::each([day("2009-01-15"), day("2008-11-15"), day("2009-01-15")]);
        assert_eq!(each.to_string(), "2008-11-15, 2009-01-15");
        assert_eq!(
            kept(each.text_predicate("ts")).await,
            ["2008-11", "2009-01"]
        );
        assert_eq!(
            Days::of_range(Some(day("2018-11-05")), None).to_string(),
            "2018-11-05 onwards"
        );
        assert_eq!(Days::of_range(None, None).to_string(), "every day");
    }
}
