//! The jobs' own bookkeeping: run records and the landing objects claimed.

use crate::*;

pub const META_RUNS: TableDef = TableDef {
    layer: Layer::Meta,
    source: None,
    name: "runs",
    doc: "One row per job run: what it read, what it wrote and how it ended. The same record is the \
          last line a job prints on stdout.",
    columns: &[
        col("run_id", Text, "Unique id of the run."),
        col("job", Text, "`bronze`, `silver` or `gold`."),
        col("version", Text, "Version of the job binary."),
        col("started_at", Timestamp, "Start of the run."),
        col("finished_at", Timestamp, "End of the run."),
        col("outcome", Text, "`succeeded` or `failed`."),
        col("rows_in", Int64, "Rows (or lines) read."),
        col("rows_out", Int64, "Rows written to the layer's tables."),
        col("rows_quarantined", Int64, "Rows written to quarantine."),
        col(
            "record",
            Text,
            "The whole run record as JSON: arguments, inputs, outputs with their Delta versions, counts.",
        ),
    ],
    partition_by: &[],
};

pub const META_LANDED_OBJECTS: TableDef = TableDef {
    layer: Layer::Meta,
    source: None,
    name: "landed_objects",
    doc: "Landing objects bronze has landed, so that a re-run lands only new or changed objects.",
    columns: &[
        col("source", Text, "Source folder in landing, e.g. `lastfm`."),
        col("object", Text, "URI of the landing object."),
        col("size", Int64, "Size in bytes when landed."),
        opt("e_tag", Text, "ETag (or local file version) when landed."),
        col(
            "batch",
            Int64,
            "Bronze batch the object belongs to: claimed here before its rows are written, each bronze table then records the newest batch it holds of each lane as a Delta transaction: `lake.bronze`, or `lake.bronze.shard.<i>.<N>` for `bronze --shard i/N` (the lane of a batch is in `meta/bronze_batches/<batch>.json`).",
        ),
        col("run_id", Text, "Bronze run that landed it."),
        col("landed_at", Timestamp, "When it was landed."),
    ],
    partition_by: &[],
};
