//! The SPA beside the API: its files, and `index.html` for its client routes (`/` and `/c/{name}`). Any other
//! path that is not a file answers the API's 404.

use acidizer_core::http::ApiError;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use std::path::PathBuf;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

#[derive(Clone)]
pub struct Site {
    dir: PathBuf,
}

impl Site {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

pub async fn serve(State(site): State<Site>, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::NotFound.into_response();
    }
    let path = request.uri().path();
    let is_client_route = path == "/" || path.strip_prefix("/c/").is_some_and(|rest| !rest.contains('/'));
    let response = if is_client_route {
        ServeFile::new(site.dir.join("index.html")).oneshot(request).await
    } else {
        ServeDir::new(&site.dir).oneshot(request).await
    };
    match response {
        Ok(response) if response.status() != StatusCode::NOT_FOUND => response.into_response(),
        _ => ApiError::NotFound.into_response(),
    }
}
