//! The runtime every job shares: configuration ([`config`], [`env`]), object stores
//! ([`store`]), Delta tables ([`lake`], [`write`]), the one DataFusion session of the jobs and
//! the `lake` tool ([`session`], [`functions`], [`catalog`]), SQL files and results ([`sql`]),
//! what a run rebuilds ([`scope`], [`refresh`]), one run per job at a time ([`lease`]) and
//! only while it holds its lease ([`guard`]), the bronze batches and how far each is complete
//! ([`batches`]),
//! logging ([`telemetry`]) and the run life cycle with its summary and run record ([`run`]).
//!
//! A job's `main.rs` parses its flags and hands its body to [`run::run_job`]; everything
//! else a job does is library code over [`run::Run`].

pub mod batches;
pub mod catalog;
mod changes;
#[cfg(feature = "cluster")]
pub mod cluster;
pub(crate) mod clustered;
pub mod compute;
pub mod config;
pub mod copies;
pub mod env;
pub mod error;
mod explain;
pub mod fault;
pub mod functions;
pub mod guard;
pub mod identity;
mod json_records;
pub mod lake;
pub mod lease;
pub mod maintenance;
pub mod progress;
pub mod refresh;
pub mod run;
pub mod scope;
pub mod session;
pub mod sql;
pub mod store;
mod stream;
pub mod telemetry;
pub mod write;

pub use batches::{Registry, lane};
pub use compute::{ClusterArgs, Compute};
pub use config::{LakeArgs, LakeConfig};
pub use copies::Copies;
pub use error::{EXIT_CODES_HELP, Exit, LakeError, Result};
pub use lake::{AsOf, Lake, Readable};
pub use lease::Hold;
pub use refresh::Refresh;
pub use run::{Held, hold_lease, written_by};
pub use run::{Input, Run, Summary, run_job};
pub use scope::{Days, Month, Months, Part, Scope, ScopeArgs};
pub use session::session;
pub use sql::{Counts, Sql, counts, int64_column, register_as, register_view, text_column};
pub use store::Location;
pub use stream::{BatchReceiver, BatchSender, batch_channel};
pub use write::{BRONZE_TXN, Commit, GOLD_TXN, Requires, SILVER_TXN, WriteMode, Written, conform};
