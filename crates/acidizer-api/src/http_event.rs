//! API Gateway HTTP API events made safe for lambda_http, which panics (and with `panic = "abort"`, ends the
//! instance) on an event it cannot turn into a request: a query string with characters a URI may not hold, an
//! `X-Forwarded-Proto` or `Host` that is not a URL's, or a body marked base64 that is not. Each is mended before
//! lambda_http reads the event, so the router answers it like any other request (with a problem if it is bad).

use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_runtime::LambdaEvent;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use std::task::{Context, Poll};

/// What a query string may hold as it is; everything else is percent-encoded.
const QUERY_ENCODED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The event, with whatever lambda_http could not read mended.
pub fn mend(event: LambdaRequest) -> LambdaRequest {
    let LambdaRequest::ApiGatewayV2(mut request) = event else { return event };
    if let Some(query) = request.raw_query_string.as_mut() {
        *query = utf8_percent_encode(query, QUERY_ENCODED).to_string();
    }
    let proto = request.headers.get("x-forwarded-proto").map(|value| value.as_bytes());
    if proto.is_some_and(|proto| proto != b"https" && proto != b"http") {
        request.headers.remove("x-forwarded-proto");
    }
    let host = request.headers.get(http::header::HOST).map(|value| value.to_str().is_ok_and(is_host));
    if host == Some(false) {
        request.headers.remove(http::header::HOST);
    }
    if request.request_context.domain_name.as_deref().is_some_and(|domain| !is_host(domain)) {
        request.request_context.domain_name = None;
    }
    if request.is_base64_encoded
        && let Some(body) = &request.body
        && base64::engine::general_purpose::STANDARD.decode(body).is_err()
    {
        // Not base64 after all: the body is taken as it came, and refused or accepted as such.
        request.is_base64_encoded = false;
    }
    LambdaRequest::ApiGatewayV2(request)
}

/// A host name (with an optional port) a URL can be made of.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b':'))
        && url::Url::parse(&format!("https://{host}/")).is_ok()
}

/// A service that mends each event (with [`mend`]) before `S` reads it.
#[derive(Clone)]
pub struct Mended<S>(pub S);

impl<S> tower::Service<LambdaEvent<LambdaRequest>> for Mended<S>
where
    S: tower::Service<LambdaEvent<LambdaRequest>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, event: LambdaEvent<LambdaRequest>) -> Self::Future {
        self.0.call(LambdaEvent::new(mend(event.payload), event.context))
    }
}
