//! The lake: the Delta tables of the catalogue at their locations under the lake root, read as
//! DataFusion tables by their SQL names (`silver.lastfm_listens`). Writing is in [`crate::write`].

use std::sync::Arc;

use datafusion::catalog::MemTable;
use datafusion::common::TableReference;
use datafusion::datasource::TableProvider;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use lake_schema::TableDef;
use parquet::file::properties::WriterProperties;
use url::Url;

use crate::config::LakeConfig;
use crate::error::{LakeError, Result};
use crate::guard::{Guard, Guarded};
use crate::run::Input;
use crate::store::Location;

#[derive(Debug, Clone)]
pub struct Lake {
    /// The lake's root, whose store refuses writes once the run's lease has a problem.
    root: Location,
    /// The fence of the run that writes through this lake, if any ([`crate::guard`]).
    guard: Arc<Guard>,
    /// The Parquet settings of every file the jobs write (see [`crate::write`]).
    pub(crate) parquet: WriterProperties,
    /// Tables are read as their snapshot's Parquet files, which a cluster can scan
    /// ([`crate::cluster`]), rather than through deltalake; writes run the query there and
    /// commit here.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) snapshot_scans: bool,
}

/// A past state of a table, for time travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    /// The latest version committed at or before this time.
    Time(chrono::DateTime<chrono::Utc>),
}

impl std::fmt::Display for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsOf::Version(v) => write!(f, "version {v}"),
            AsOf::Time(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

/// A table as SQL reads it, and the Delta version read (`None`: never written, read as empty),
/// with the table loaded at that version.
pub struct Readable {
    pub provider: Arc<dyn TableProvider>,
    pub version: Option<u64>,
    pub table: Option<DeltaTable>,
}

/// `root` with its store guarded by `guard` (see [`Guarded`]).
fn guarded(root: Location, guard: &Arc<Guard>) -> Location {
    let leases = root.file_path("_leases");
    let guard = guard.clone();
    root.wrapped(|store| Arc::new(Guarded::new(store, guard, leases)))
}

impl Lake {
    pub async fn open(cfg: &LakeConfig) -> Result<Self> {
        deltalake::aws::register_handlers(None);
        let guard = Arc::new(Guard::default());
        let root = Location::open(&cfg.lake, cfg).await?;
        Ok(Self {
            root: guarded(root, &guard),
            guard,
            parquet: WriterProperties::builder()
                .set_compression(cfg.parquet_compression)
                .set_max_row_group_row_count(Some(cfg.parquet_row_group_rows))
                .set_created_by(format!(
                    "lakehouse-jobs {} (delta-rs)",
                    env!("CARGO_PKG_VERSION")
                ))
                .build(),
            snapshot_scans: false,
        })
    }

    /// A lake at `root` with the default Parquet settings (tests give it a store of their own).
    #[cfg(test)]
    pub(crate) fn over(root: Location) -> Self {
        let guard = Arc::new(Guard::default());
        Self {
            root: guarded(root, &guard),
            guard,
            parquet: WriterProperties::builder().build(),
            snapshot_scans: false,
        }
    }

    /// The lake for a session whose queries run on a cluster: every table is read as the
    /// Parquet files of its version ([`crate::cluster::SnapshotTable`]).
    #[cfg(feature = "cluster")]
    pub fn on_cluster(self) -> Self {
        Self {
            snapshot_scans: true,
            ..self
        }
    }

    pub fn root(&self) -> &Location {
        &self.root
    }

    /// The fence of the run writing through this lake.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    pub fn location(&self, def: &TableDef) -> Result<Location> {
        self.root.child(&def.path())
    }

    pub fn table_url(&self, def: &TableDef) -> Result<Url> {
        Ok(self.location(def)?.url().clone())
    }

    fn builder(&self, def: &TableDef) -> Result<DeltaTableBuilder> {
        let url = self.table_url(def)?;
        let builder = DeltaTableBuilder::from_url(url.clone())
            .map_err(LakeError::delta(def.qualified_name()))?;
        // the lake's own store, local or not: its writes are fenced
        Ok(builder.with_storage_backend(self.root.store().clone(), url))
    }

    /// The table, loaded at its latest version; `None` when it was never written.
    pub async fn table(&self, def: &TableDef) -> Result<Option<DeltaTable>> {
        // Probing a location without a log makes the Delta kernel log an error; look first.
        if !self.location(def)?.child("_delta_log")?.exists().await? {
            return Ok(None);
        }
        let mut table = self
            .builder(def)?
            .build()
            .map_err(LakeError::delta(def.qualified_name()))?;
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(LakeError::delta(def.qualified_name())(e)),
        }
    }

    /// The table's directory when the lake is local.
    fn local_dir(&self, def: &TableDef) -> Result<Option<std::path::PathBuf>> {
        if !self.root.is_local() {
            return Ok(None);
        }
        let url = self.table_url(def)?;
        Ok(url.to_file_path().ok())
    }

    /// The table, created empty with the catalogue's schema when it does not exist yet.
    pub(crate) async fn table_or_create(&self, def: &TableDef) -> Result<DeltaTable> {
        if let Some(table) = self.table(def).await? {
            return Ok(table);
        }
        if let Some(dir) = self.local_dir(def)? {
            std::fs::create_dir_all(&dir).map_err(|e| LakeError::Io {
                location: dir.display().to_string(),
                message: format!("cannot create the table directory: {e}"),
            })?;
        }
        let err = LakeError::delta(def.qualified_name());
        let schema: StructType = def
            .arrow_schema()
            .try_into_kernel()
            .map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
        // Column docs stay in the catalogue: per-column comment metadata makes deltalake 1.1
        // refuse later overwrites ("cannot merge metadata").
        let columns = schema.fields().cloned();
        let created = self
            .builder(def)?
            .build()
            .map_err(LakeError::delta(def.qualified_name()))?
            .create()
            .with_table_name(def.qualified_name())
            .with_comment(def.doc.split_whitespace().collect::<Vec<_>>().join(" "))
            .with_columns(columns)
            .with_partition_columns(def.partition_by.iter().copied())
            .with_save_mode(SaveMode::Ignore)
            // of two creators at the same moment (shards, parts), the second must not commit
            // its table's metadata again as version 1: that would conflict with the first
            // one's writes. It fails instead, and uses the first one's table.
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match created {
            Ok(table) => Ok(table),
            // another writer may have created it at the same moment: use theirs if so
            Err(why) => match self.table(def).await? {
                Some(table) => Ok(table),
                None => Err(LakeError::delta(def.qualified_name())(why)),
            },
        }
    }

    /// The version of the application transaction `app_id` the table holds (see
    /// [`crate::Commit`]); `None` when the table does not exist or never recorded one.
    pub async fn txn_version(&self, def: &TableDef, app_id: &str) -> Result<Option<i64>> {
        let Some(table) = self.table(def).await? else {
            return Ok(None);
        };
        let snapshot = table
            .snapshot()
            .map_err(LakeError::delta(def.qualified_name()))?;
        snapshot
            .transaction_version(table.log_store().as_ref(), app_id)
            .await
            .map_err(LakeError::delta(def.qualified_name()))
    }

    /// The table for SQL at its latest version, or as it was at `as_of`. A table that was never
    /// written reads as empty, with its catalogue schema (a past version of it is an error).
    /// The latest version must have the catalogue's columns: one an earlier version of the jobs
    /// wrote is a configuration error saying how to rebuild it.
    pub async fn readable(&self, def: &TableDef, as_of: Option<&AsOf>) -> Result<Readable> {
        let name = def.qualified_name();
        let Some(mut table) = self.table(def).await? else {
            if as_of.is_some() {
                return Err(LakeError::delta(name)(DeltaTableError::Generic(
                    "the table has never been written, so it has no past versions".into(),
                )));
            }
            #[cfg(feature = "cluster")]
            if self.snapshot_scans {
                let files = crate::cluster::SnapshotTable::of(self, def, None).await?;
                return Ok(Readable {
                    provider: Arc::new(files),
                    version: None,
                    table: None,
                });
            }
            let empty = MemTable::try_new(def.arrow_schema(), vec![vec![]])
                .map_err(LakeError::query(&name))?;
            return Ok(Readable {
                provider: Arc::new(empty),
                version: None,
                table: None,
            });
        };
        match as_of {
            None => self.check_columns(def, &table)?,
            Some(AsOf::Version(v)) => {
                table
                    .load_version(*v)
                    .await
                    .map_err(LakeError::delta(format!(
                        "{name} as of {}",
                        AsOf::Version(*v)
                    )))?
            }
            Some(AsOf::Time(t)) => table
                .load_with_datetime(*t)
                .await
                .map_err(LakeError::delta(format!("{name} as of {}", AsOf::Time(*t))))?,
        }
        #[cfg(feature = "cluster")]
        if self.snapshot_scans {
            let files = crate::cluster::SnapshotTable::of(self, def, Some(&table)).await?;
            return Ok(Readable {
                provider: Arc::new(files),
                version: table.version(),
                table: Some(table),
            });
        }
        let provider = table
            .table_provider()
            .await
            .map_err(LakeError::query(&name))?;
        Ok(Readable {
            provider,
            version: table.version(),
            table: Some(table),
        })
    }

    /// Stops with what to do when the table's columns are not the catalogue's.
    fn check_columns(&self, def: &TableDef, table: &DeltaTable) -> Result<()> {
        let have = layout(def, table)?;
        let want = catalogue_layout(def);
        if have == want {
            return Ok(());
        }
        Err(LakeError::Config {
            message: format!(
                "{}: the table at {} has columns ({}) but this version of the jobs reads ({}): \
                 an earlier version wrote it. Rebuild it: silver and gold with --full-refresh; \
                 for bronze and meta, move the lake away and land the landing data again",
                def.qualified_name(),
                self.table_url(def)?,
                have.join(", "),
                want.join(", ")
            ),
        })
    }

    /// Lets a session read the lake's files: registers the lake's store (S3) in its runtime.
    /// The local file system is always registered.
    pub fn attach(&self, runtime: &RuntimeEnv) {
        if self.root.is_local() {
            return;
        }
        let url = self.root.url();
        let bucket = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        if let Ok(store_url) = ObjectStoreUrl::parse(&bucket)
            && runtime.object_store(&store_url).is_err()
            && let Ok(bucket) = Url::parse(&bucket)
        {
            runtime.register_object_store(&bucket, self.root.store().clone());
        }
    }

    /// Registers the table in `ctx` under its qualified name, at its latest version (see
    /// [`Lake::readable`]). Returns the version read.
    pub async fn register(&self, ctx: &SessionContext, def: &TableDef) -> Result<Option<u64>> {
        Ok(self.pin(ctx, def).await?.version)
    }

    /// Registers the table in `ctx` at its latest version, and returns it as read: a reader
    /// that must know what that version holds (its transactions) asks the same snapshot.
    pub async fn pin(&self, ctx: &SessionContext, def: &TableDef) -> Result<Readable> {
        let table = self.readable(def, None).await?;
        self.attach(ctx.runtime_env().as_ref());
        register_provider(ctx, def, table.provider.clone())?;
        Ok(table)
    }

    /// Registers a job's input tables (see [`Lake::register`]); the versions read, for the run
    /// record. A table never written is read as empty and has no version.
    pub async fn register_inputs(
        &self,
        ctx: &SessionContext,
        defs: &[&TableDef],
    ) -> Result<Vec<Input>> {
        let mut inputs = Vec::with_capacity(defs.len());
        for def in defs {
            inputs.push(Input {
                name: def.qualified_name(),
                version: self.register(ctx, def).await?,
            });
        }
        Ok(inputs)
    }
}

/// Registers `provider` in `ctx` as the table `def` (under its qualified name), in place of
/// what was registered under that name.
pub fn register_provider(
    ctx: &SessionContext,
    def: &TableDef,
    provider: Arc<dyn TableProvider>,
) -> Result<()> {
    let reference = TableReference::partial(def.layer.as_str(), def.sql_name());
    ctx.deregister_table(reference.clone())
        .map_err(LakeError::query(def.qualified_name()))?;
    ctx.register_table(reference, provider)
        .map_err(LakeError::query(def.qualified_name()))?;
    Ok(())
}

/// The table's column names, in order, with its partition columns after a `/` (`a, b / b`):
/// what the catalogue's definition must match.
pub(crate) fn layout(def: &TableDef, table: &DeltaTable) -> Result<Vec<String>> {
    let snapshot = table
        .snapshot()
        .map_err(LakeError::delta(def.qualified_name()))?;
    let mut layout: Vec<String> = snapshot
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    let partitions = snapshot.metadata().partition_columns();
    if !partitions.is_empty() {
        layout.push(format!("/ {}", partitions.join(", ")));
    }
    Ok(layout)
}

/// The layout [`layout`] reads, as the catalogue defines it.
pub(crate) fn catalogue_layout(def: &TableDef) -> Vec<String> {
    let mut layout: Vec<String> = def.columns.iter().map(|c| c.name.to_string()).collect();
    if !def.partition_by.is_empty() {
        layout.push(format!("/ {}", def.partition_by.join(", ")));
    }
    layout
}
