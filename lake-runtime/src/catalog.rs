//! The lake's tables by their SQL names, resolved when a statement names them (the `lake`
//! tool's session): `silver.lastfm_listens` at its latest version, `silver.lastfm_listens@v3`
//! at version 3, and `silver."lastfm_listens@2026-11-22T01:00:00Z"` (or `@2026-11-22`) as it was
//! at that time (Delta time travel). A table the jobs never wrote reads as empty with its
//! catalogue schema. Each statement reads each table it names once, at one version.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::TableType;
use datafusion::prelude::SessionContext;
use lake_schema::{CATALOGUE, Layer, TableDef};

use crate::lake::{AsOf, Lake};
use crate::session::CATALOG;

/// Makes every table of the catalogue readable in `ctx` by its qualified name, with time
/// travel; replaces the session's empty layer schemas.
pub fn attach(ctx: &SessionContext, lake: &Lake) {
    lake.attach(ctx.runtime_env().as_ref());
    if let Some(catalog) = ctx.catalog(CATALOG) {
        for layer in Layer::ALL {
            let schema = LakeSchema {
                lake: lake.clone(),
                layer,
            };
            let _ = catalog.register_schema(layer.as_str(), Arc::new(schema));
        }
    }
}

/// One layer of the lake as a schema.
#[derive(Debug)]
struct LakeSchema {
    lake: Lake,
    layer: Layer,
}

impl LakeSchema {
    /// The catalogue's table of this layer named `name` (without an `@…` suffix).
    fn def(&self, name: &str) -> Option<&'static TableDef> {
        CATALOGUE
            .iter()
            .copied()
            .find(|d| d.layer == self.layer && d.sql_name() == name)
    }
}

/// `lastfm_listens@v3` → (`lastfm_listens`, `Some("v3")`).
fn split_as_of(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((table, when)) => (table, Some(when)),
        None => (name, None),
    }
}

/// `v3`, an RFC 3339 time, or a day (its midnight, UTC).
pub fn parse_as_of(when: &str) -> Option<AsOf> {
    if let Some(v) = when.strip_prefix(['v', 'V']) {
        return v.parse().ok().map(AsOf::Version);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(when) {
        return Some(AsOf::Time(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(when, "%Y-%m-%d").ok()?;
    Some(AsOf::Time(day.and_hms_opt(0, 0, 0)?.and_utc()))
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        CATALOGUE
            .iter()
            .filter(|d| d.layer == self.layer)
            .map(|d| d.sql_name())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let (table, when) = split_as_of(name);
        let Some(def) = self.def(table) else {
            return Ok(None);
        };
        let as_of = match when {
            None => None,
            Some(when) => Some(parse_as_of(when).ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "'{}@{when}': say a version as @v3, or a time as @2026-11-22T01:00:00Z or @2026-11-22",
                    def.qualified_name()
                ))
            })?),
        };
        let readable = self
            .lake
            .readable(def, as_of.as_ref())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(readable.provider))
    }

    /// Listing tables (`SHOW TABLES`, `information_schema`) does not read them.
    async fn table_type(&self, name: &str) -> Result<Option<TableType>> {
        Ok(self.table_exist(name).then_some(TableType::Base))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.def(split_as_of(name).0).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_a_time_or_a_day_names_a_past_state() {
        assert_eq!(parse_as_of("v3"), Some(AsOf::Version(3)));
        assert!(matches!(
            parse_as_of("2026-11-22"),
            Some(AsOf::Time(t)) if t.to_rfc3339() == "2026-11-22T00:00:00+00:00"
        ));
        assert!(matches!(
            parse_as_of("2026-11-22T01:00:00+01:00"),
            Some(AsOf::Time(t)) if t.to_rfc3339() == "2026-11-22T00:00:00+00:00"
        ));
        assert_eq!(parse_as_of("yesterday"), None);
        assert_eq!(
            split_as_of("lastfm_listens@v3"),
            ("lastfm_listens", Some("v3"))
        );
    }
}
