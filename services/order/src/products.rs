//! Who sells a product, asked of the product service, which owns the catalogue: a sale
//! is only made for a product that exists, by the merchant who sells it. The separate
//! order service asks the product service's public API (`order.product_api_url`); the
//! one-process shop answers in-process.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use goodsmall_platform::error::{ApiError, ErrorCode};

/// An in-process lookup answers its failure as it would be answered to the client.
type Lookup = dyn Fn(i64) -> Pin<Box<dyn Future<Output = Result<Option<i64>, ApiError>> + Send>> + Send + Sync;

#[derive(Clone)]
pub enum ProductOwners {
    /// `GET {base}/api/products/{id}` of the product service.
    Api { client: reqwest::Client, base: reqwest::Url },
    /// A lookup in the same process (the one-process shop).
    InProcess(Arc<Lookup>),
}

#[derive(Debug, thiserror::Error)]
pub enum ProductLookupError {
    #[error("the product service at {url} did not answer: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the product service answered {status} for {url}")]
    Status { url: String, status: reqwest::StatusCode },
    #[error("the product service's answer for {url} has no merchant_id")]
    Malformed { url: String },
    #[error("looking up the product in this process failed")]
    InProcess(#[source] ApiError),
}

/// A product service that is down or broken is a dependency failing: 503, retryable.
impl From<ProductLookupError> for ApiError {
    fn from(e: ProductLookupError) -> Self {
        match e {
            ProductLookupError::InProcess(e) => e,
            e => {
                tracing::warn!(error = %e, "product service unavailable");
                ApiError::new(ErrorCode::ServiceUnavailable, "the product service is unavailable; try again")
                    .retry_after(1)
            }
        }
    }
}

impl ProductOwners {
    pub fn api(base: reqwest::Url) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        Self::Api { client, base }
    }

    pub fn in_process<F, Fut>(lookup: F) -> Self
    where
        F: Fn(i64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<i64>, ApiError>> + Send + 'static,
    {
        Self::InProcess(Arc::new(move |id| Box::pin(lookup(id))))
    }

    /// The merchant who sells `product_id`; `None` when there is no such product.
    pub async fn owner_of(&self, product_id: i64) -> Result<Option<i64>, ProductLookupError> {
        match self {
            Self::InProcess(lookup) => lookup(product_id).await.map_err(ProductLookupError::InProcess),
            Self::Api { client, base } => {
                let url = base
                    .join(&format!("api/products/{product_id}"))
                    .map_err(|_| ProductLookupError::Malformed { url: base.to_string() })?
                    .to_string();
                let response = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|source| ProductLookupError::Unreachable { url: url.clone(), source })?;
                match response.status() {
                    reqwest::StatusCode::NOT_FOUND => Ok(None),
                    status if !status.is_success() => Err(ProductLookupError::Status { url, status }),
                    _ => {
                        let product: serde_json::Value = response
                            .json()
                            .await
                            .map_err(|source| ProductLookupError::Unreachable { url: url.clone(), source })?;
                        product["merchant_id"].as_i64().map(Some).ok_or(ProductLookupError::Malformed { url })
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::{extract::Path, http::StatusCode, routing::get, Json, Router};

    use super::*;

    /// A stand-in product service: product 1 is merchant 7's, 500 is broken, others unknown.
    async fn product_service() -> reqwest::Url {
        let app = Router::new().route(
            "/api/products/{id}",
            get(|Path(id): Path<i64>| async move {
                match id {
                    1 => Ok(Json(serde_json::json!({ "id": 1, "merchant_id": 7 }))),
                    500 => Err(StatusCode::INTERNAL_SERVER_ERROR),
                    _ => Err(StatusCode::NOT_FOUND),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn the_product_service_answers_who_sells_a_product() {
        let owners = ProductOwners::api(product_service().await);
        assert_eq!(owners.owner_of(1).await.unwrap(), Some(7));
        assert_eq!(owners.owner_of(2).await.unwrap(), None, "404 is no such product");
        let broken = owners.owner_of(500).await.unwrap_err();
        assert!(matches!(broken, ProductLookupError::Status { status, .. } if status == 500), "{broken}");
        assert_eq!(ApiError::from(broken).code, ErrorCode::ServiceUnavailable);
    }

    #[tokio::test]
    async fn an_unreachable_product_service_is_unavailability_not_a_missing_product() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let owners = ProductOwners::api(format!("http://127.0.0.1:{port}").parse().unwrap());
        let err = owners.owner_of(1).await.unwrap_err();
        assert!(matches!(err, ProductLookupError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "names the address: {err}");
        let api = ApiError::from(err);
        assert_eq!((api.code, api.retry_after_secs), (ErrorCode::ServiceUnavailable, Some(1)));
    }

    #[tokio::test]
    async fn in_process_lookups_are_passed_through() {
        let owners = ProductOwners::in_process(|id| async move { Ok((id == 3).then_some(9)) });
        assert_eq!((owners.owner_of(3).await.unwrap(), owners.owner_of(4).await.unwrap()), (Some(9), None));
    }
}
