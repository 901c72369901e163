//! The runtime every job shares: configuration ([`config`]), object stores ([`store`]),
//! Delta tables and the DataFusion session ([`lake`]), one run per job at a time ([`lease`]),
//! logging ([`telemetry`]) and the run life cycle with its summary and run record ([`run`]).
//!
//! A job's `main.rs` parses its flags and hands its body to [`run::run_job`]; everything
//! else a job does is library code over [`run::Run`].

pub mod config;
pub mod error;
pub mod fault;
pub mod lake;
pub mod lease;
pub mod maintenance;
pub mod progress;
pub mod run;
pub mod scope;
pub mod store;
pub mod telemetry;

pub use config::{LakeArgs, LakeConfig};
pub use error::{EXIT_CODES_HELP, Exit, LakeError, Result};
pub use lake::{
    AsOf, BatchReceiver, BatchSender, Commit, Lake, WriteMode, Written, batch_channel,
    int64_column, session, text_column,
};
pub use run::{Input, Run, Summary, run_job};
pub use scope::{Month, Months, Scope, ScopeArgs, days_predicate};
pub use store::Location;
