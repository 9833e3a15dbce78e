//! CORS for the origins of `ALLOWED_ORIGINS` ([`AllowedOrigins`]).

use acidizer_core::AllowedOrigins;
use http::{HeaderName, HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub(super) fn layer(origins: &AllowedOrigins) -> CorsLayer {
    let allow_origin = match origins {
        AllowedOrigins::None => AllowOrigin::list([]),
        AllowedOrigins::Any => AllowOrigin::any(),
        // Each listed origin was parsed as a header value.
        AllowedOrigins::List(list) => {
            AllowOrigin::list(list.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()))
        }
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static(super::IDEMPOTENCY_KEY)])
        .expose_headers([
            HeaderName::from_static(super::IDEMPOTENT_REPLAYED),
            HeaderName::from_static(super::REQUEST_ID),
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// The `Access-Control-Allow-Origin` a preflight from `origin` gets.
    async fn preflight(origins: &AllowedOrigins, origin: &str) -> Option<HeaderValue> {
        let app = axum::Router::new().route("/increment", axum::routing::post(|| async {})).layer(layer(origins));
        let request = http::Request::options("/increment")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).cloned()
    }

    #[tokio::test]
    async fn listed_origins_are_allowed_and_no_other() {
        let listed = AllowedOrigins::parse("https://a.example, http://localhost:5173").unwrap();
        assert_eq!(preflight(&listed, "https://a.example").await.unwrap(), "https://a.example");
        assert_eq!(preflight(&listed, "http://localhost:5173").await.unwrap(), "http://localhost:5173");
        assert_eq!(preflight(&listed, "https://evil.example").await, None);
        assert_eq!(preflight(&AllowedOrigins::None, "https://a.example").await, None);
        assert_eq!(preflight(&AllowedOrigins::Any, "https://b.example").await.unwrap(), "*");
    }
}
