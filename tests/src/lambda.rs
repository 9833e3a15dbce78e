//! Runs a Lambda binary as Lambda runs it: a local Runtime API that hands out invocations, and in front of it a
//! stand-in for API Gateway's HTTP API that turns each HTTP request into a payload format 2.0 event and the
//! function's answer back into an HTTP response.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path as FsPath;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// API Gateway gives up on an integration after 29 s.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

struct Invocation {
    id: String,
    event: Value,
}

struct Shared {
    queue: mpsc::UnboundedSender<Invocation>,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<Value, String>>>>,
    /// The function's timeout: each invocation's deadline is this far from its start.
    timeout: Duration,
}

/// The HTTP API in front of `instances` running copies of a Lambda binary.
pub struct Gateway {
    pub base: String,
    pub log: tempfile::NamedTempFile,
    shared: Arc<Shared>,
    functions: Vec<Child>,
    _server: tokio::task::JoinHandle<()>,
}

impl Gateway {
    pub async fn start(binary: &FsPath, env: &[(&str, String)], instances: usize) -> Gateway {
        Self::start_with_timeout(binary, env, instances, INTEGRATION_TIMEOUT).await
    }

    /// As [`Gateway::start`], for a function whose timeout is `timeout`.
    pub async fn start_with_timeout(
        binary: &FsPath,
        env: &[(&str, String)],
        instances: usize,
        timeout: Duration,
    ) -> Gateway {
        let (queue, next) = mpsc::unbounded_channel();
        let waiting = Mutex::new(HashMap::new());
        let shared = Arc::new(Shared { queue, next: tokio::sync::Mutex::new(next), waiting, timeout });
        let runtime = Arc::clone(&shared);
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(http_api)
            .with_state(runtime);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let functions = (0..instances)
            .map(|instance| {
                let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("function");
                Command::new(binary)
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
                    .env("AWS_LAMBDA_FUNCTION_NAME", name)
                    .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                    .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
                    .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("instance-{instance}"))
                    .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                    .env("RUST_LOG", "info,acidizer_store_dynamodb=debug")
                    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                    .stdin(Stdio::null())
                    .stdout(append_to(log.path()))
                    .stderr(append_to(log.path()))
                    .kill_on_drop(true)
                    .spawn()
                    .expect("the Lambda binary starts")
            })
            .collect();
        Gateway { base: format!("http://{addr}"), log, shared, functions, _server: server }
    }

    /// The process ids of the function's copies.
    pub fn pids(&self) -> Vec<u32> {
        self.functions.iter().filter_map(Child::id).collect()
    }

    /// What the functions wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Invokes a function directly with `event`, as an event source would, and returns its answer.
    pub async fn invoke(&self, event: Value) -> Result<Value, String> {
        invoke(&self.shared, event).await
    }
}

async fn invoke(shared: &Shared, event: Value) -> Result<Value, String> {
    let id = uuid::Uuid::new_v4().to_string();
    let (reply, answer) = oneshot::channel();
    shared.waiting.lock().expect("the waiting list").insert(id.clone(), reply);
    shared.queue.send(Invocation { id, event }).map_err(|_| "no function is running".to_owned())?;
    match tokio::time::timeout(shared.timeout + Duration::from_secs(1), answer).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err("the invocation was dropped".to_owned()),
        Err(_) => Err("the function did not answer in time".to_owned()),
    }
}

/// Every function instance appends to the one log, so no line overwrites another.
fn append_to(path: &FsPath) -> std::fs::File {
    std::fs::OpenOptions::new().append(true).open(path).expect("the log file")
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    let invocation = shared.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now() + shared.timeout;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let mut response = invocation.event.to_string().into_response();
    let headers = response.headers_mut();
    let header = |value: String| HeaderValue::from_str(&value).expect("a header value");
    headers.insert("lambda-runtime-aws-request-id", header(invocation.id));
    headers.insert("lambda-runtime-deadline-ms", header(deadline_ms.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:us-east-1:123456789012:function:acidizer-api".to_owned()),
    );
    headers.insert("lambda-runtime-trace-id", header("Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    response
}

async fn invocation_response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: String) -> StatusCode {
    let answer = serde_json::from_str(&body).map_err(|error| format!("the function answered non-JSON: {error}"));
    finish(&shared, &id, answer)
}

async fn invocation_error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: String) -> StatusCode {
    finish(&shared, &id, Err(format!("the function failed: {body}")))
}

async fn init_error(body: String) -> StatusCode {
    eprintln!("Lambda init error: {body}");
    StatusCode::ACCEPTED
}

fn finish(shared: &Shared, id: &str, answer: Result<Value, String>) -> StatusCode {
    let waiter = shared.waiting.lock().expect("the waiting list").remove(id);
    match waiter {
        Some(waiter) => {
            let _ = waiter.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

/// The HTTP API: one request in, one event to the function, its answer out.
async fn http_api(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 10 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large").into_response();
    };
    let event = event_v2(&uuid::Uuid::new_v4().to_string(), &parts.method, &parts.uri, &parts.headers, &body);
    match invoke(&shared, event).await {
        Ok(answer) => response_from(&answer),
        Err(failure) => {
            eprintln!("{failure}");
            (StatusCode::INTERNAL_SERVER_ERROR, r#"{"message":"Internal Server Error"}"#).into_response()
        }
    }
}

fn event_v2(id: &str, method: &axum::http::Method, uri: &axum::http::Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut joined: HashMap<String, String> = HashMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        joined.entry(name.as_str().to_owned()).and_modify(|v| *v = format!("{v},{value}")).or_insert(value);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": id,
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:10:00:00 +0000",
            "timeEpoch": now,
        },
        "isBase64Encoded": false,
    });
    if let Some(query) = uri.query().filter(|q| !q.is_empty()) {
        let parameters: HashMap<String, String> = form_pairs(query);
        event["queryStringParameters"] = json!(parameters);
    }
    if !body.is_empty() {
        event["body"] = json!(BASE64.encode(body));
        event["isBase64Encoded"] = json!(true);
    }
    event
}

fn form_pairs(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn response_from(answer: &Value) -> Response {
    let status = answer["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
    let Some(status) = status else {
        return (StatusCode::INTERNAL_SERVER_ERROR, r#"{"message":"Internal Server Error"}"#).into_response();
    };
    let body = answer["body"].as_str().unwrap_or("");
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        BASE64.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(headers) = answer["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) =
                (axum::http::HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str))
            {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}
