//! SDK clients for an endpoint, and server errors as `__type: message`.
//!
//! Credentials and region come from the usual AWS sources: the environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), then the
//! shared config/credentials files (`--profile` or `AWS_PROFILE`). For an endpoint that is not
//! on this machine the SDK's whole default chain is used (SSO, web identity, container and
//! instance roles); for a loopback endpoint those remote sources are skipped, so no request
//! leaves the machine while looking for credentials. When nothing is found a fixed dummy key is
//! used, which a server started with `--auth none` accepts. Credentials are never printed.

use std::time::Duration;

use aws_config::meta::region::ProvideRegion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;
use clap::Args;

use crate::DataError;

/// Where a command's DynamoDB endpoint is, and whose credentials sign its requests.
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// The DynamoDB endpoint URL (Ferrodyn, DynamoDB Local, or https://dynamodb.REGION.amazonaws.com).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8000",
        env = "FERRODYN_ENDPOINT"
    )]
    pub endpoint: String,
    /// AWS region that signs requests [default: AWS_REGION, the profile's region, or us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// Named profile of the shared AWS config and credentials files [default: AWS_PROFILE].
    #[arg(long)]
    pub profile: Option<String>,
}

/// True when `url`'s host is this machine (localhost, 127.0.0.0/8, ::1).
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Connection {
    /// An SDK client for this endpoint. The SDK's own retries (3 attempts, standard mode) cover
    /// transient errors; the bulk writers add their own back-off on unprocessed items.
    pub async fn client(&self) -> crate::Result<Client> {
        self.client_for(&self.endpoint).await
    }

    /// A client for another endpoint with this connection's region and credentials.
    pub async fn client_for(&self, endpoint: &str) -> crate::Result<Client> {
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(DataError::Usage(format!(
                "endpoint {endpoint:?} must start with http:// or https://"
            )));
        }
        let local = is_loopback(endpoint);
        let region = self.region(local).await;
        let credentials = self.credentials(local, &region).await;
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(50)),
            )
            .build();
        Ok(Client::from_conf(config))
    }

    async fn region(&self, local: bool) -> Region {
        if let Some(r) = &self.region {
            return Region::new(r.clone());
        }
        if let Some(r) = aws_config::environment::region::EnvironmentVariableRegionProvider::new()
            .region()
            .await
        {
            return r;
        }
        let mut profile = aws_config::profile::ProfileFileRegionProvider::builder();
        if let Some(p) = &self.profile {
            profile = profile.profile_name(p);
        }
        if let Some(r) = profile.build().region().await {
            return r;
        }
        if !local {
            if let Some(r) = aws_config::default_provider::region::default_provider()
                .region()
                .await
            {
                return r;
            }
        }
        Region::new("us-east-1")
    }

    async fn credentials(&self, local: bool, region: &Region) -> SharedCredentialsProvider {
        let env =
            aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new();
        if env.provide_credentials().await.is_ok() {
            return SharedCredentialsProvider::new(env);
        }
        if local {
            let mut profile = aws_config::profile::ProfileFileCredentialsProvider::builder();
            if let Some(p) = &self.profile {
                profile = profile.profile_name(p);
            }
            let profile = profile.build();
            if profile.provide_credentials().await.is_ok() {
                return SharedCredentialsProvider::new(profile);
            }
        } else {
            let mut chain =
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .region(region.clone());
            if let Some(p) = &self.profile {
                chain = chain.profile_name(p);
            }
            let chain = chain.build().await;
            if chain.provide_credentials().await.is_ok() {
                return SharedCredentialsProvider::new(chain);
            }
        }
        SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "ferrodyn-anonymous",
            "ferrodyn-anonymous",
            None,
            None,
            "ferrodyn-dummy",
        ))
    }
}

/// An SDK error as a [`DataError`]: a service error keeps its code and message (`__type:
/// message`); anything else (connection refused, timeout) is a transport error with the SDK's
/// full context.
pub fn api_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> DataError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            DataError::Api {
                operation,
                code: e.code().unwrap_or("UnknownError").to_owned(),
                message: e.message().unwrap_or("").to_owned(),
            }
        }
        _ => {
            // The chain of causes, without the SDK's debug dump.
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                let text = s.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = s.source();
            }
            DataError::Transport { operation, message }
        }
    }
}

/// The error code of a service error, if it is one.
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8000"));
        assert!(is_loopback("http://localhost"));
        assert!(is_loopback("https://[::1]:443/x"));
        assert!(is_loopback("http://127.8.9.1"));
        assert!(is_loopback("http://user@localhost:1"));
        assert!(!is_loopback("https://dynamodb.us-east-1.amazonaws.com"));
        assert!(!is_loopback("http://10.0.0.1:8000"));
        assert!(!is_loopback("http://localhost.example.com"));
    }
}
