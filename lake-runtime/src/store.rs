//! Object stores behind lake and landing locations: the local file system, or S3 with
//! credentials and region from the AWS SDK's standard chain.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential, S3CopyIfNotExists};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CredentialProvider, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use url::Url;

use crate::config::LakeConfig;
use crate::error::{LakeError, Result};

/// A directory-like location (ending in `/`) together with the store that holds it.
#[derive(Debug, Clone)]
pub struct Location {
    url: Url,
    store: Arc<dyn ObjectStore>,
    /// The location's path inside `store` (no leading or trailing `/`).
    prefix: Path,
}

impl Location {
    /// Opens the store for `url`. For S3 this resolves region and credentials once.
    pub async fn open(url: &Url, cfg: &LakeConfig) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => Arc::new(LocalFileSystem::new()),
            "s3" => s3_store(url, cfg).await?,
            other => {
                return Err(LakeError::Config {
                    message: format!("{url}: scheme {other} is not supported"),
                });
            }
        };
        Self::with_store(url.clone(), store)
    }

    /// The location `url` in `store`, which is rooted at the bucket (S3) or at `/` (local).
    pub fn with_store(url: Url, store: Arc<dyn ObjectStore>) -> Result<Self> {
        let prefix = if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| LakeError::Config {
                message: format!("{url} is not a local path"),
            })?;
            Path::from_absolute_path(&path).map_err(|e| LakeError::Config {
                message: format!("{url}: {e}"),
            })?
        } else {
            Path::from(url.path().trim_matches('/'))
        };
        Ok(Self { url, store, prefix })
    }

    /// The same location, through `wrap` of its store.
    pub fn wrapped(self, wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>) -> Self {
        Self {
            store: wrap(self.store),
            ..self
        }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The store, rooted at the bucket (S3) or at `/` (local), as Delta wants it.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn is_local(&self) -> bool {
        self.url.scheme() == "file"
    }

    /// A sub-directory, e.g. `child("silver/lastfm/listens")`.
    pub fn child(&self, rel: &str) -> Result<Self> {
        let rel = rel.trim_matches('/');
        let url = self
            .url
            .join(&format!("{rel}/"))
            .map_err(|e| LakeError::Config {
                message: format!("{}: cannot join {rel}: {e}", self.url),
            })?;
        let mut prefix = self.prefix.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            prefix = prefix.clone().join(part);
        }
        Ok(Self {
            url,
            store: self.store.clone(),
            prefix,
        })
    }

    /// The store path of a file directly under this location.
    pub fn file_path(&self, name: &str) -> Path {
        self.prefix.clone().join(name)
    }

    /// The URL of an object of this store (for messages and lineage).
    pub fn object_url(&self, path: &Path) -> String {
        let mut base = self.url.clone();
        let full = format!("/{path}");
        base.set_path(&full);
        base.to_string()
    }

    /// The path of `path` relative to this location.
    pub fn relative(&self, path: &Path) -> String {
        let prefix = self.prefix.as_ref();
        let p = path.as_ref();
        p.strip_prefix(prefix)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(p)
            .to_string()
    }

    /// Every object below this location, sorted by path.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let mut objects: Vec<ObjectMeta> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(LakeError::store(self.url.to_string()))?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// The objects below this location whose path sorts after `name` (a path relative to this
    /// location), sorted by path: on S3, a listing that starts there.
    pub async fn list_after(&self, name: &str) -> Result<Vec<ObjectMeta>> {
        let offset = self.file_path(name);
        let mut objects: Vec<ObjectMeta> = self
            .store
            .list_with_offset(Some(&self.prefix), &offset)
            .try_collect()
            .await
            .map_err(LakeError::store(self.url.to_string()))?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// Whether this location holds at least one object (or, locally, exists as a directory).
    pub async fn exists(&self) -> Result<bool> {
        if self.is_local() {
            return Ok(self.url.to_file_path().map(|p| p.is_dir()).unwrap_or(false));
        }
        let first = self
            .store
            .list(Some(&self.prefix))
            .try_next()
            .await
            .map_err(LakeError::store(self.url.to_string()))?;
        Ok(first.is_some())
    }

    /// Writes a whole (small) file under this location, replacing what was there.
    pub async fn put_file(&self, name: &str, bytes: Bytes) -> Result<String> {
        let path = self.file_path(name);
        let url = self.object_url(&path);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(LakeError::store(url.clone()))?;
        Ok(url)
    }
}

fn retry_config(cfg: &LakeConfig) -> RetryConfig {
    RetryConfig {
        max_retries: cfg.s3_max_retries,
        retry_timeout: Duration::from_secs(cfg.s3_retry_timeout_secs),
        ..RetryConfig::default()
    }
}

/// An S3 store for the bucket of `url`. Everything `AmazonS3Builder::from_env` understands
/// (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …) applies; region and credentials come from the
/// AWS SDK's chain so that profiles, SSO and web identity work as in the AWS CLI.
async fn s3_store(url: &Url, cfg: &LakeConfig) -> Result<Arc<dyn ObjectStore>> {
    let bucket = url.host_str().unwrap_or_default().to_string();
    let aws = |message: String| LakeError::Aws {
        location: url.to_string(),
        message,
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
        aws("no AWS region: set AWS_REGION or a region in your AWS profile".to_string())
    })?;
    let credentials = sdk
        .credentials_provider()
        .ok_or_else(|| aws("no AWS credentials provider could be configured".to_string()))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_region(region)
        .with_credentials(Arc::new(SdkCredentials {
            provider: credentials,
            cached: tokio::sync::Mutex::new(None),
        }))
        .with_retry(retry_config(cfg))
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            format!("{}s", cfg.s3_request_timeout_secs),
        );
    if let Some(endpoint) = sdk.endpoint_url() {
        builder = builder.with_endpoint(endpoint);
    }
    if std::env::var_os(crate::env::AWS_COPY_IF_NOT_EXISTS).is_none() {
        // Delta commits need an atomic "create if absent"; conditional put does it without DynamoDB.
        builder = builder.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    }
    let store = builder.build().map_err(|e| aws(e.to_string()))?;
    Ok(Arc::new(store))
}

/// Feeds credentials from the AWS SDK's provider chain to object_store, cached until five
/// minutes before they expire (the chain itself may call STS or an SSO portal).
#[derive(Debug)]
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|at| {
                at.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
            });
            if fresh {
                return Ok(credential.clone());
            }
        }
        let c = self.provider.provide_credentials().await.map_err(|e| {
            object_store::Error::Unauthenticated {
                path: String::new(),
                source: Box::new(e),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), c.expiry()));
        Ok(credential)
    }
}
