//! The SPA beside the API: its files, and `index.html` for its client routes (`/` and `/c/{name}`). Any other
//! path that is not a file answers the API's 404.

use crate::live::websocket::Live;
use acidizer_core::CounterStore;
use acidizer_http::ApiError;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use std::os::fd::AsFd;
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

/// `/config.json`: where the SPA finds the API and the WebSocket — this server itself — and the counters' ceiling.
pub async fn config<S: CounterStore>(State(live): State<Live<S>>, headers: http::HeaderMap) -> Response {
    let host = headers.get(http::header::HOST).and_then(|host| host.to_str().ok());
    let counter_max = live.counters.max().get();
    let body = match host {
        Some(host) => serde_json::json!({
            "apiUrl": format!("http://{host}"),
            "wsUrl": format!("ws://{host}/ws"),
            "counterMax": counter_max,
        }),
        None => serde_json::json!({ "counterMax": counter_max }),
    };
    ([(http::header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// The SPA's sources, relative to the repository root (the working directory of `cargo run`).
const FRONTEND_DIR: &str = "frontend";

/// Builds the SPA into `dist` when it is missing and its sources are at hand, so that the first
/// `cargo run -p acidizer -- serve` on a fresh clone shows the page. Failing that, the API still serves.
pub fn build_if_missing(dist: &std::path::Path) {
    let frontend = std::path::Path::new(FRONTEND_DIR);
    if dist.join("index.html").is_file() || dist != frontend.join("dist") || !frontend.join("package.json").is_file() {
        return;
    }
    let npm = |args: &[&str]| {
        tracing::info!("building the SPA: npm {}", args.join(" "));
        // npm's output goes to stderr: stdout carries only the server's URL line.
        let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
        std::process::Command::new("npm")
            .args(args)
            .current_dir(frontend)
            .stdin(std::process::Stdio::null())
            .stdout(stderr)
            .status()
            .is_ok_and(|status| status.success())
    };
    let installed = frontend.join("node_modules").is_dir() || npm(&["ci", "--no-audit", "--no-fund"]);
    if !(installed && npm(&["run", "build"])) {
        tracing::warn!("could not build the SPA (is Node.js installed?); serving the API only");
    }
}
