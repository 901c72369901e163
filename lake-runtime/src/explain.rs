//! `LAKE_EXPLAIN_ANALYZE`: the plan of the query that writes a table, with each operator's rows,
//! time and memory, logged before the write. A diagnostic for performance work.

use datafusion::prelude::DataFrame;

use crate::env::LAKE_EXPLAIN_ANALYZE;

/// With `LAKE_EXPLAIN_ANALYZE` naming the table (or `all`), runs the query that a write is
/// about to run once more on its own and logs its plan (the query then runs twice).
pub(crate) async fn explain_analyze(table: &str, df: &DataFrame) {
    let Ok(wanted) = std::env::var(LAKE_EXPLAIN_ANALYZE) else {
        return;
    };
    if wanted != "all" && !wanted.split(',').any(|t| t.trim() == table) {
        return;
    }
    let plan = match df.clone().explain(false, true) {
        Ok(plan) => plan.collect().await,
        Err(e) => Err(e),
    };
    match plan
        .map(|b| datafusion::arrow::util::pretty::pretty_format_batches(&b).map(|t| t.to_string()))
    {
        Ok(Ok(text)) => tracing::info!(table, "EXPLAIN ANALYZE\n{text}"),
        Ok(Err(e)) => tracing::warn!(table, "EXPLAIN ANALYZE could not be shown: {e}"),
        Err(e) => tracing::warn!(table, "EXPLAIN ANALYZE failed: {e}"),
    }
}
