//! The runtime's errors, and the exit codes they map to.

use std::process::ExitCode;

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The configuration cannot be used (bad location, bad file, missing landing data).
    #[error("{message}")]
    Config { message: String },

    /// The object store failed (after its retries) on a named object or prefix.
    #[error("object store error at {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: Box<object_store::Error>,
    },

    /// AWS region or credentials could not be resolved.
    #[error("AWS configuration for {location}: {message}")]
    Aws { location: String, message: String },

    /// A Delta table could not be read or written.
    #[error("Delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },

    /// A query failed.
    #[error("{context}: {source}")]
    Query {
        context: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },

    /// Another run of the same job holds the lake's lease.
    #[error("{message}")]
    Busy { message: String },

    /// Another run took over this run's work: it took over its lease (this run stalled, or its
    /// lease could not be renewed), or wrote what this run was about to write. This run stopped
    /// before its next commit.
    #[error("{message}")]
    Superseded { message: String },

    /// Reading an input object failed in a way that is not a data problem.
    #[error("{location}: {message}")]
    Io { location: String, message: String },
}

impl LakeError {
    pub fn query(
        context: impl Into<String>,
    ) -> impl Fn(datafusion::error::DataFusionError) -> Self {
        let context = context.into();
        move |source| LakeError::Query {
            context: context.clone(),
            source: Box::new(source),
        }
    }

    pub fn delta(table: impl Into<String>) -> impl FnOnce(deltalake::DeltaTableError) -> Self {
        let table = table.into();
        move |source| LakeError::Delta {
            table,
            source: Box::new(source),
        }
    }

    pub fn store(location: impl Into<String>) -> impl FnOnce(object_store::Error) -> Self {
        let location = location.into();
        move |source| LakeError::Store {
            location,
            source: Box::new(source),
        }
    }

    pub fn exit_code(&self) -> Exit {
        match self {
            LakeError::Config { .. } => Exit::Config,
            LakeError::Busy { .. } | LakeError::Superseded { .. } => Exit::Busy,
            _ => Exit::Failed,
        }
    }
}

/// Exit codes of every job, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run succeeded; bad data rows, if any, are in quarantine and counted in the summary.
    Ok = 0,
    /// The run failed: the store, a table or a query failed. Safe to retry.
    Failed = 1,
    /// Unusable arguments or configuration. Retrying will not help; fix the configuration.
    Config = 2,
    /// The run wrote its tables, but quarantined more than `--max-quarantine-ratio` of its rows.
    TooMuchQuarantined = 3,
    /// Another run of the same job is running on this lake (nothing was written), or took over
    /// this run's lease after it stalled (it stopped before its next commit). Retry later.
    Busy = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Text for the `--help` footer of every job.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (rows that break a rule are quarantined and counted, not a failure)
  1  the run failed (object store, Delta table or query error); safe to re-run
  2  unusable arguments or configuration; fix them before re-running
  3  the tables were written, but more than --max-quarantine-ratio of the rows
     read went to quarantine; look at the quarantine tables
  4  another run of the same job is running on this lake (nothing was written),
     or took over this run's lease after it stalled (it stopped before its next
     commit); retry later";
