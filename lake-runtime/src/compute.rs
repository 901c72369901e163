//! Where a job's or `lake sql`'s queries run: in this process (the default), or on an Apache
//! DataFusion Ballista cluster (`--scheduler df://host:50050`, with the `cluster` feature; see
//! [`crate::cluster`]). Either way the results come back here, and writes are committed here.

use datafusion::prelude::SessionContext;

use crate::config::LakeConfig;
use crate::env;
use crate::error::{LakeError, Result};
use crate::lake::Lake;

/// The flag that sends the SQL to a cluster. Flatten into the clap parser of gold and `lake`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Run the SQL on an Apache DataFusion Ballista cluster: its scheduler (df://host:50050),
    /// e.g. one started with `lake cluster scheduler` [default: in this process]
    #[arg(long, env = env::LAKE_SCHEDULER, value_name = "URL")]
    pub scheduler: Option<String>,
}

/// Where queries run.
#[derive(Debug, Clone)]
pub struct Compute {
    cfg: LakeConfig,
    scheduler: Option<String>,
}

impl Compute {
    /// Queries of `cfg` where `args` say; a scheduler in a build without the `cluster`
    /// feature is a configuration error (exit 2).
    pub fn new(cfg: &LakeConfig, args: &ClusterArgs) -> Result<Self> {
        if args.scheduler.is_some() && !cfg!(feature = "cluster") {
            return Err(LakeError::Config {
                message: "--scheduler needs a build with the `cluster` feature \
                          (make build CLUSTER=1); without it, leave it out to run \
                          the SQL in this process"
                    .into(),
            });
        }
        Ok(Self {
            cfg: cfg.clone(),
            scheduler: args.scheduler.clone(),
        })
    }

    /// Where the queries run, for logs and run records.
    pub fn describe(&self) -> String {
        match &self.scheduler {
            Some(s) => format!("on the Ballista cluster of {s}"),
            None => "in this process".into(),
        }
    }

    /// Whether the queries run on a cluster: plans must then have a form Ballista can send.
    pub fn on_cluster(&self) -> bool {
        self.scheduler.is_some()
    }

    /// A session whose queries run where they should.
    pub async fn session(&self) -> Result<SessionContext> {
        match &self.scheduler {
            #[cfg(feature = "cluster")]
            Some(scheduler) => crate::cluster::remote_session(&self.cfg, scheduler).await,
            _ => Ok(crate::session::session(&self.cfg)),
        }
    }

    /// The lake as those sessions read it: through deltalake here, as each table's snapshot
    /// files on a cluster.
    pub fn lake(&self, lake: &Lake) -> Lake {
        match &self.scheduler {
            #[cfg(feature = "cluster")]
            Some(_) => lake.clone().on_cluster(),
            _ => lake.clone(),
        }
    }
}
