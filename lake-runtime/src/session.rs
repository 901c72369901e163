//! The one DataFusion session of the jobs and the `lake` tool: Delta's planner (needed to
//! write), one schema per layer (`bronze`, `silver`, `gold`, `meta`), the lake's SQL functions
//! ([`crate::functions`]) and the configured memory limit. A query therefore runs the same in a
//! job and in `lake sql`.

use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::config::SpillCompression;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::delta_datafusion::DeltaSessionConfig;
use deltalake::delta_datafusion::planner::DeltaPlanner;
use lake_schema::Layer;

use crate::config::LakeConfig;

/// The catalog every layer's schema lives in.
pub const CATALOG: &str = "datafusion";

/// A session with an empty schema per layer; the jobs register their inputs in it, the `lake`
/// tool resolves every table of the catalogue (see [`crate::catalog`]). Beyond the configured
/// memory limit, sorts, joins and aggregations spill to the system's temporary directory.
pub fn session(cfg: &LakeConfig) -> SessionContext {
    let config: SessionConfig = DeltaSessionConfig::default().into();
    let mut config = config
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, "public");
    // a spill file is written once and read once: LZ4 keeps its bytes down for about a tenth of
    // silver's CPU at 1× (a partitioned write sorts and spills all its rows)
    config.options_mut().execution.spill_compression = SpillCompression::Lz4Frame;
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = cfg.memory_limit {
        // a sort sets memory aside for merging its spilled runs: a share of a small limit
        let reserve = config.options().execution.sort_spill_reservation_bytes;
        config = config.with_sort_spill_reservation_bytes(reserve.min(limit / 8));
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_query_planner(DeltaPlanner::new());
    match runtime.build_arc() {
        Ok(runtime) => state = state.with_runtime_env(runtime),
        Err(e) => tracing::warn!("no memory limit or spilling for this session: {e}"),
    }
    let ctx = SessionContext::new_with_state(state.build());
    equip(&ctx);
    ctx
}

/// Gives a session the lake's SQL functions and an empty schema per layer.
pub(crate) fn equip(ctx: &SessionContext) {
    crate::functions::register(ctx);
    if let Some(catalog) = ctx.catalog(CATALOG) {
        for layer in Layer::ALL {
            let _ = catalog.register_schema(layer.as_str(), Arc::new(MemorySchemaProvider::new()));
        }
    }
}
