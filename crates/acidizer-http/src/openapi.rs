//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API (`crates/acidizer-http/openapi.json`), byte for
//! byte.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The OpenAPI document of the API: every route, parameter, header, answer and problem type.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub(super) async fn serve() -> Response {
    let mut response = (StatusCode::OK, OPENAPI_JSON).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiError, MAX_BODY_BYTES, Route};
    use acidizer_core::domain::{CounterName, HistoryLimit, IdempotencyKey};
    use http::Method;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// The methods an OpenAPI path item can hold an operation for.
    const OPERATION_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn document() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
    }

    /// The (method, path) pairs the document has an operation for.
    fn documented(document: &Value) -> BTreeSet<(String, String)> {
        let paths = document["paths"].as_object().expect("the document has paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                OPERATION_METHODS
                    .iter()
                    .filter(|method| item.get(**method).is_some())
                    .map(|method| (method.to_ascii_uppercase(), path.clone()))
            })
            .collect()
    }

    /// How the routes and the document disagree: each route that is not documented, each documented operation
    /// that is not routed. Empty when they agree.
    fn drift(document: &Value, routes: &[(Method, &str)]) -> Vec<String> {
        let routed: BTreeSet<(String, String)> =
            routes.iter().map(|(method, path)| (method.to_string(), (*path).to_owned())).collect();
        let documented = documented(document);
        let undocumented = routed.difference(&documented).map(|(m, p)| format!("{m} {p} is routed, not documented"));
        let unrouted = documented.difference(&routed).map(|(m, p)| format!("{m} {p} is documented, not routed"));
        undocumented.chain(unrouted).collect()
    }

    fn routes() -> Vec<(Method, &'static str)> {
        Route::ALL.iter().map(|route| (route.method(), route.path())).collect()
    }

    #[test]
    fn the_document_is_openapi_3_1_of_this_version() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_document_has_every_route_and_no_other() {
        assert_eq!(drift(&document(), &routes()), Vec::<String>::new());
    }

    #[test]
    fn an_undocumented_route_is_drift() {
        let mut routes = routes();
        routes.push((Method::POST, "/counters/{name}/reset"));
        routes.push((Method::DELETE, "/counters/{name}"));
        assert_eq!(
            drift(&document(), &routes),
            [
                "DELETE /counters/{name} is routed, not documented",
                "POST /counters/{name}/reset is routed, not documented"
            ]
        );
    }

    #[test]
    fn a_documented_operation_without_its_route_is_drift() {
        let routes: Vec<_> = routes().into_iter().filter(|(_, path)| *path != "/health").collect();
        assert_eq!(drift(&document(), &routes), ["GET /health is documented, not routed"]);
        let mut document = document();
        document["paths"]["/value"]["post"] = serde_json::json!({ "responses": {} });
        assert_eq!(drift(&document, &self::routes()), ["POST /value is documented, not routed"]);
    }

    #[test]
    fn the_problem_types_are_those_the_code_produces() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        let strings = |value: &Value| -> BTreeSet<String> {
            let values =
                value.get("enum").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![value["const"].clone()]);
            values.iter().map(|value| value.as_str().expect("a problem type is a string").to_owned()).collect()
        };
        let produced: BTreeSet<(u16, String)> =
            ApiError::problem_types().map(|(status, problem_type)| (status.as_u16(), problem_type)).collect();
        let listed = strings(&schemas["Problem"]["properties"]["type"]);
        assert_eq!(listed, produced.iter().map(|(_, problem_type)| problem_type.clone()).collect());
        // Each answer's own problem schema narrows Problem to types the code produces with that answer's status.
        let problem = serde_json::json!([{ "$ref": "#/components/schemas/Problem" }]);
        let narrowed: Vec<(&String, &Value)> =
            schemas.as_object().unwrap().iter().filter(|(_, schema)| schema["allOf"] == problem).collect();
        assert!(narrowed.len() >= 10, "{narrowed:?}");
        for (name, schema) in narrowed {
            let status = schema["properties"]["status"]["const"].as_u64().expect("a status") as u16;
            for problem_type in strings(&schema["properties"]["type"]) {
                assert!(produced.contains(&(status, problem_type.clone())), "{name}: {status} {problem_type}");
            }
        }
    }

    #[test]
    fn the_documented_limits_are_the_code_s() {
        let document = document();
        let components = &document["components"];
        let key = &components["schemas"]["RequestId"];
        assert_eq!(key["maxLength"], IdempotencyKey::MAX_LEN);
        assert_eq!(key["pattern"], format!("^[A-Za-z0-9._:-]{{1,{}}}$", IdempotencyKey::MAX_LEN));
        let name = &components["schemas"]["CounterName"]["pattern"];
        assert_eq!(*name, format!("^[a-z0-9][a-z0-9_-]{{0,{}}}$", CounterName::MAX_LEN - 1));
        let limit = &components["parameters"]["Limit"]["schema"];
        assert_eq!((&limit["maximum"], &limit["default"]), (&Value::from(HistoryLimit::MAX), &Value::from(20)));
        assert_eq!(HistoryLimit::default().get(), 20);
        assert_eq!(components["parameters"]["Before"]["schema"]["maximum"], u64::MAX);
        assert!(components["requestBodies"]["Change"]["description"].as_str().unwrap().contains("1 KiB"));
        assert_eq!(MAX_BODY_BYTES, 1024);
    }

    #[tokio::test]
    async fn serves_the_document_byte_for_byte() {
        let response = serve().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body, OPENAPI_JSON.as_bytes());
    }
}
