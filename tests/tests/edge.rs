//! The edge in front of the HTTP API (`infra/template.yaml`): AWS WAF's per-client limits, CloudFront's behaviors
//! for the contract's routes and for the page's, and the API's own address, which answers the edge alone. Checked on
//! the template through its transforms, with the edge's code run as its runtime runs it: the CloudFront function
//! with node, the authorizer with python3. A limit that blocks with another answer than the API's, a route of the
//! contract that reaches the page (or is cached), or an authorizer that lets a request through without the edge's
//! secret, fails here.

use acidizer_http::{ApiError, OPENAPI_JSON};
use acidizer_tests::cloudformation::{resource, text_json, transformed};
use acidizer_tests::deploy_job::{deploy_run, deploy_step, step_names};
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// The header CloudFront adds to every request it sends the API, with the edge's secret.
const EDGE_HEADER: &str = "x-acidizer-edge";
/// CloudFront's managed cache policy "CachingDisabled" and origin request policy "AllViewerExceptHostHeader".
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// The status, headers and JSON body the API answers `error` with.
async fn api_answer(error: ApiError) -> (u16, http::HeaderMap, Value) {
    let response = error.into_response();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 4096).await.expect("the body");
    (parts.status.as_u16(), parts.headers, serde_json::from_slice(&bytes).expect("a JSON body"))
}

fn distribution(template: &Value) -> &Value {
    &resource(template, "SiteDistribution")["Properties"]["DistributionConfig"]
}

/// Whether a CloudFront path pattern (`*`: any characters, `?`: one) matches `path`.
fn pattern_matches(pattern: &[u8], path: &[u8]) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (None, _) => path.is_empty(),
        (Some((b'*', rest)), _) => (0..=path.len()).any(|skip| pattern_matches(rest, &path[skip..])),
        (Some((b'?', rest)), Some((_, path))) => pattern_matches(rest, path),
        (Some((expected, rest)), Some((got, path))) => expected == got && pattern_matches(rest, path),
        (Some(_), None) => false,
    }
}

/// The behavior CloudFront picks for `path`: the first listed whose pattern matches it, else the default.
fn behavior_for<'a>(config: &'a Value, path: &str) -> &'a Value {
    config["CacheBehaviors"]
        .as_array()
        .expect("the API's behaviors")
        .iter()
        .find(|behavior| pattern_matches(text_json(&behavior["PathPattern"]).as_bytes(), path.as_bytes()))
        .unwrap_or(&config["DefaultCacheBehavior"])
}

/// Each client address is held to its own limits at the edge: AWS WAF counts its changes (POST) and all its
/// requests over a minute, and over either limit answers what the API answers a client over its rate: 429, the
/// same problem body, Retry-After. The web ACL is CloudFront's, on the stage's distribution.
#[tokio::test]
async fn each_client_is_limited_at_the_edge() {
    let template = transformed(&[]);
    assert_eq!(distribution(&template)["WebACLId"], json!({"Fn::GetAtt": ["EdgeWebAcl", "Arn"]}));
    let acl = &resource(&template, "EdgeWebAcl")["Properties"];
    assert_eq!((&acl["Scope"], &acl["DefaultAction"]), (&json!("CLOUDFRONT"), &json!({"Allow": {}})));

    let (status, headers, api_body) = api_answer(ApiError::RateLimited { retry_after_secs: 60 }).await;
    let rules = acl["Rules"].as_array().expect("rules");
    for (name, parameter, changes_only) in [
        ("changes-per-client", "ClientChangesPerMinute", true),
        ("requests-per-client", "ClientRequestsPerMinute", false),
    ] {
        let rule = rules.iter().find(|rule| rule["Name"] == name).unwrap_or_else(|| panic!("a rule {name}"));
        let rate = &rule["Statement"]["RateBasedStatement"];
        assert_eq!(rate["Limit"], json!({"Ref": parameter}), "{name}");
        assert_eq!((&rate["AggregateKeyType"], &rate["EvaluationWindowSec"]), (&json!("IP"), &json!(60)), "{name}");
        let scope = &rate["ScopeDownStatement"]["ByteMatchStatement"];
        if changes_only {
            assert_eq!(scope["FieldToMatch"], json!({"Method": {}}), "{name} counts changes: {rate}");
            assert_eq!((&scope["PositionalConstraint"], &scope["SearchString"]), (&json!("EXACTLY"), &json!("POST")));
        } else {
            assert!(rate.get("ScopeDownStatement").is_none(), "{name} counts every request: {rate}");
        }
        let declared = &template["Parameters"][parameter];
        assert!(declared["MinValue"].as_u64() >= Some(10), "AWS WAF's smallest limit is 10: {declared}");

        let response = &rule["Action"]["Block"]["CustomResponse"];
        assert_eq!(response["ResponseCode"].as_u64(), Some(u64::from(status)), "{name}");
        let body = &acl["CustomResponseBodies"][text_json(&response["CustomResponseBodyKey"])];
        assert_eq!(body["ContentType"], "APPLICATION_JSON");
        let waf_body: Value = serde_json::from_str(&text_json(&body["Content"])).expect("a JSON body");
        assert_eq!(waf_body, api_body, "{name} answers the API's own 429");
        let header = |wanted: &str| {
            response["ResponseHeaders"]
                .as_array()
                .and_then(|all| all.iter().find(|h| h["Name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(wanted))))
                .map(|h| text_json(&h["Value"]))
        };
        let retry_after = headers.get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("retry-after"), retry_after, "{name}");
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{name}");
    }
    let default = |parameter: &str| template["Parameters"][parameter]["Default"].as_u64().expect("a default");
    assert!(default("ClientChangesPerMinute") < default("ClientRequestsPerMinute"));
}

/// Every route of the contract (the OpenAPI document's paths, and deeper ones of /counters) goes to the API,
/// uncached, with every method and the client's headers and query (Idempotency-Key, Origin); the page's routes
/// and files go to the site. The API's origin is its execute-api address over HTTPS, with the edge's secret header,
/// and the stack's HttpApiUrl is the edge.
#[test]
fn the_contracts_routes_go_to_the_api_and_the_pages_to_the_site() {
    let template = transformed(&[]);
    let config = distribution(&template);
    let openapi: Value = serde_json::from_str(OPENAPI_JSON).expect("the OpenAPI document");
    let mut routes: Vec<String> =
        openapi["paths"].as_object().expect("paths").keys().map(|path| path.replace("{name}", "global")).collect();
    assert!(routes.len() >= 10, "{routes:?}");
    routes.extend(["/counters/global/increment/more", "/counters/x"].map(str::to_owned));
    for route in &routes {
        let behavior = behavior_for(config, route);
        assert_eq!(behavior["TargetOriginId"], "api", "{route} goes to the API");
        assert_eq!(behavior["CachePolicyId"], CACHING_DISABLED, "{route} is never cached");
        assert_eq!(behavior["OriginRequestPolicyId"], ALL_VIEWER_EXCEPT_HOST, "{route}");
        assert_eq!(behavior["ViewerProtocolPolicy"], "https-only", "{route}");
        let methods = behavior["AllowedMethods"].as_array().expect("methods");
        assert_eq!(methods.len(), 7, "{route}: every method, for the API's 405 to answer");
    }
    for page in ["/", "/c/global", "/index.html", "/config.json", "/assets/index-1a2b.js", "/nothing", "/counters"] {
        assert_eq!(behavior_for(config, page)["TargetOriginId"], "site", "{page} is the site's");
    }

    let origins = config["Origins"].as_array().expect("origins");
    let api = origins.iter().find(|origin| origin["Id"] == "api").expect("the API's origin");
    assert_eq!(api["DomainName"], json!({"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.amazonaws.com"}));
    assert_eq!(api["CustomOriginConfig"]["OriginProtocolPolicy"], "https-only");
    let headers = api["OriginCustomHeaders"].as_array().expect("the edge's header");
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0]["HeaderName"], EDGE_HEADER);
    assert_eq!(headers[0]["HeaderValue"], secret_reference());
    let outputs = &template["Outputs"];
    assert_eq!(outputs["HttpApiUrl"]["Value"], json!({"Fn::Sub": "https://${SiteDistribution.DomainName}"}));
    assert_eq!(
        outputs["HttpApiOriginUrl"]["Value"],
        json!({"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.amazonaws.com"})
    );
}

/// The edge's secret as CloudFormation resolves it, never written in the template.
fn secret_reference() -> Value {
    json!({"Fn::Sub": "{{resolve:secretsmanager:${EdgeSecret}:SecretString}}"})
}

/// The API answers the edge alone: every route has the authorizer, whose identity is the edge's header (a request
/// without it is refused by API Gateway before any function runs), and the authorizer lets through the edge's
/// secret and nothing else.
#[test]
fn the_api_answers_the_edge_alone() {
    let template = transformed(&[]);
    let body = &resource(&template, "HttpApi")["Properties"]["Body"];
    let authorizer = &body["components"]["securitySchemes"]["ThroughTheEdge"]["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["identitySource"], json!([format!("$request.header.{EDGE_HEADER}")]));
    assert_eq!(
        (&authorizer["enableSimpleResponses"], &authorizer["authorizerPayloadFormatVersion"]),
        (&true.into(), &"2.0".into())
    );
    assert!(authorizer["authorizerUri"].to_string().contains("EdgeAuthorizerFunction"), "{authorizer}");
    let paths = body["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().expect("methods") {
            assert_eq!(operation["security"], json!([{"ThroughTheEdge": []}]), "{method} {path}");
        }
    }
    let function = &resource(&template, "EdgeAuthorizerFunction")["Properties"];
    assert_eq!(function["Environment"]["Variables"]["EDGE_SECRET"], secret_reference());
    assert!(function["ReservedConcurrentExecutions"].is_number(), "{function}");

    let code = text_json(&function["Code"]["ZipFile"]);
    let secret = "b4Kq9ZrX2mPpL0s7TtVw3YyNnCcEeRr1";
    for (given, allowed) in [
        (Some(secret.to_owned()), true),
        (Some(format!("{secret}x")), false),
        (Some(secret[1..].to_owned()), false),
        (Some(String::new()), false),
        (None, false),
    ] {
        assert_eq!(authorize(&code, secret, given.as_deref()), allowed, "{given:?}");
    }
    assert!(!authorize(&code, "", Some("")), "no secret lets nothing through");
}

/// Runs the authorizer's handler as Lambda's Python runtime does, on a request carrying `given` in the edge's
/// header; whether it lets the request through.
fn authorize(code: &str, secret: &str, given: Option<&str>) -> bool {
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("index.py"), code).expect("the code");
    let headers = match given {
        Some(value) => json!({EDGE_HEADER: value, "content-type": "application/json"}),
        None => json!({"content-type": "application/json"}),
    };
    let event = json!({"version": "2.0", "type": "REQUEST", "routeKey": "$default", "headers": headers});
    let script = "import json, sys\nsys.path.insert(0, sys.argv[1])\nimport index\n\
                  print(json.dumps(index.handler(json.loads(sys.argv[2]), None)))";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.path())
        .arg(event.to_string())
        .env("EDGE_SECRET", secret)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    answer["isAuthorized"].as_bool().unwrap_or_else(|| panic!("a simple response: {answer}"))
}

/// The page's routes at the edge, as `acidizer serve` answers them: `/` and `/c/NAME` are index.html, the page's
/// files are themselves, and any other path or method answers the API's own 404. Run with node, as
/// CloudFront's JavaScript runtime runs it.
#[tokio::test]
async fn the_edge_answers_the_pages_routes_as_acidizer_serve_does() {
    let template = transformed(&[]);
    let function = &resource(&template, "SiteRoutesFunction")["Properties"];
    assert_eq!(function["FunctionConfig"]["Runtime"], "cloudfront-js-2.0");
    assert_eq!(function["AutoPublish"], true);
    let association = &distribution(&template)["DefaultCacheBehavior"]["FunctionAssociations"][0];
    assert_eq!(association["EventType"], "viewer-request");
    assert_eq!(
        association["FunctionARN"],
        json!({"Fn::GetAtt": ["SiteRoutesFunction", "FunctionMetadata.FunctionARN"]})
    );

    let cases = [
        ("GET", "/", Some("/index.html")),
        ("HEAD", "/", Some("/index.html")),
        ("GET", "/c/global", Some("/index.html")),
        ("GET", "/c/", Some("/index.html")),
        ("GET", "/index.html", Some("/index.html")),
        ("GET", "/config.json", Some("/config.json")),
        ("GET", "/assets/index-1a2b.js", Some("/assets/index-1a2b.js")),
        ("GET", "/nothing", None),
        ("GET", "/counters", None),
        ("GET", "/c/global/more", None),
        ("GET", "/assets/a/b.js", None),
        ("POST", "/", None),
        ("DELETE", "/c/global", None),
    ];
    let requests: Vec<Value> = cases.iter().map(|(method, uri, _)| json!({"method": method, "uri": uri})).collect();
    let answers = run_site_routes(&text_json(&function["FunctionCode"]), &requests);
    let (status, headers, not_found) = api_answer(ApiError::NotFound).await;
    for ((method, uri, passed_as), answer) in cases.iter().zip(&answers) {
        match passed_as {
            Some(path) => assert_eq!(answer["uri"], *path, "{method} {uri}: {answer}"),
            None => {
                assert_eq!(answer["statusCode"].as_u64(), Some(u64::from(status)), "{method} {uri}: {answer}");
                let content_type = headers.get(http::header::CONTENT_TYPE).unwrap().to_str().unwrap();
                assert_eq!(answer["headers"]["content-type"]["value"], content_type, "{method} {uri}");
                assert_eq!(answer["headers"]["cache-control"]["value"], "no-store", "{method} {uri}");
                let body: Value = serde_json::from_str(&text_json(&answer["body"]["data"])).expect("JSON");
                assert_eq!(body, not_found, "{method} {uri}: the API's own 404");
            }
        }
    }
}

/// Runs the CloudFront function's handler on each request, as a viewer-request event; what it returns for each.
fn run_site_routes(code: &str, requests: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("a directory");
    let harness = format!(
        "{code}\nconst requests = JSON.parse(process.argv[2]);\n\
         console.log(JSON.stringify(requests.map((r) => handler({{version: '1.0', context: {{eventType: \
         'viewer-request'}}, viewer: {{ip: '192.0.2.1'}}, request: {{method: r.method, uri: r.uri, querystring: \
         {{}}, headers: {{}}, cookies: {{}}}}}}))));\n"
    );
    let script = dir.path().join("site-routes.js");
    std::fs::write(&script, harness).expect("the script");
    let output = std::process::Command::new("node")
        .arg(&script)
        .arg(Value::from(requests.to_vec()).to_string())
        .output()
        .expect("node runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// The deploy checks the stage as clients reach it: its end-to-end check goes through the edge with fewer changes
/// than one client may make in a minute, and the API's own address must refuse a request without the edge's header.
#[test]
fn the_deploy_checks_the_edge_and_the_origin() {
    let template = transformed(&[]);
    let outputs = deploy_run("Stack outputs");
    assert!(outputs.contains("api=$(output HttpApiUrl)") && outputs.contains("origin=$(output HttpApiOriginUrl)"));
    let check = deploy_step("End-to-end check");
    let requests: u64 = check["env"]["SMOKE_REQUESTS"].as_str().and_then(|n| n.parse().ok()).expect("a count");
    let limit = template["Parameters"]["ClientChangesPerMinute"]["Default"].as_u64().expect("a default");
    assert!(requests < limit, "{requests} changes through the edge, under its {limit} a minute");
    let origin = deploy_step("The HTTP API answers the edge alone");
    assert_eq!(origin["env"]["ORIGIN_URL"].as_str(), Some("${{ steps.stack.outputs.origin }}"));
    let run = origin["run"].as_str().expect("a script");
    assert!(run.contains("$ORIGIN_URL/health") && run.contains("!= 401") && run.contains("exit 1"), "{run}");
}

/// No error is kept at the edge (CloudFront keeps 4xx and 5xx answers 10 s unless told otherwise: one client's 503
/// would be everyone's), and a file the site does not have (S3's 403) answers the API's own 404.
#[test]
fn the_edge_keeps_no_error_and_a_missing_file_is_the_apis_404() {
    let template = transformed(&[]);
    let responses = distribution(&template)["CustomErrorResponses"].as_array().expect("error responses").clone();
    // Every code CloudFront keeps by default.
    for code in [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504] {
        let response = responses.iter().find(|r| r["ErrorCode"] == code).unwrap_or_else(|| panic!("{code}"));
        assert_eq!(response["ErrorCachingMinTTL"], 0, "{code} is never kept");
        if code == 403 {
            assert_eq!(
                (&response["ResponseCode"], &response["ResponsePagePath"]),
                (&json!(404), &json!(NOT_FOUND_PAGE))
            );
        } else {
            assert!(response.get("ResponsePagePath").is_none(), "{code} is the origin's own answer: {response}");
        }
    }
}

/// Where the site's 404 lives (infra/publish-site.sh uploads it).
const NOT_FOUND_PAGE: &str = "/errors/not-found.json";

/// The files the stack's outputs decide, as `infra/publish-site.sh STACK --config-only` uploads them right after a
/// deploy (with a stand-in for the `aws` command): config.json sends the page to the edge, and the site's 404 is
/// the API's own. deploy.yml runs it as soon as the stack is updated, before the checks: the page already
/// published must not keep calling an address that now answers 401.
#[tokio::test]
async fn the_published_page_follows_the_stage_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let uploaded = dir.path().join("uploaded");
    std::fs::create_dir_all(&uploaded).unwrap();
    let stand_in = format!(
        r#"#!/usr/bin/env bash
echo "aws $*" >> '{calls}'
case "$1 $2" in
  "cloudformation describe-stacks")
    case "$*" in
      *HttpApiUrl*) echo https://d111.cloudfront.net ;;
      *WebSocketUrl*) echo wss://abc.execute-api.us-east-1.amazonaws.com/prod ;;
      *CounterMax*) echo 1000 ;;
      *SiteBucketName*) echo the-site-bucket ;;
      *SiteDistributionId*) echo E123 ;;
    esac ;;
  "s3 cp") cp "$3" '{uploaded}'/"$(basename "$4")" ;;
  "cloudfront create-invalidation") echo I123 ;;
esac
"#,
        calls = dir.path().join("calls").display(),
        uploaded = uploaded.display()
    );
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("aws"), stand_in).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(bin.join("aws")).status().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let root = acidizer_tests::binaries::repo_root();
    let output = std::process::Command::new("bash")
        .arg(root.join("infra/publish-site.sh"))
        .args(["acidizer-prod", "--config-only"])
        .env("PATH", path)
        .output()
        .expect("bash runs");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("config.json points at: https://d111.cloudfront.net"), "{printed}");

    let config: Value = serde_json::from_slice(&std::fs::read(uploaded.join("config.json")).unwrap()).unwrap();
    let expected = json!({"apiUrl": "https://d111.cloudfront.net",
        "wsUrl": "wss://abc.execute-api.us-east-1.amazonaws.com/prod", "counterMax": 1000});
    assert_eq!(config, expected);
    let page: Value = serde_json::from_slice(&std::fs::read(uploaded.join("not-found.json")).unwrap()).unwrap();
    let (_, headers, not_found) = api_answer(ApiError::NotFound).await;
    assert_eq!(page, not_found, "the site's 404 is the API's own");
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    let content_type = headers.get(http::header::CONTENT_TYPE).unwrap().to_str().unwrap();
    let upload =
        calls.lines().find(|c| c.contains(&format!("s3://the-site-bucket{NOT_FOUND_PAGE}"))).expect("uploaded");
    assert!(upload.contains(&format!("--content-type {content_type}")), "{upload}");
    assert!(!calls.contains("s3 sync"), "the page itself waits for the checks: {calls}");

    // In deploy.yml: right after the stack's outputs, before the checks and the page.
    let names = step_names();
    let at = |prefix: &str| names.iter().position(|n| n.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}"));
    let follows = at("Point the published page at the stage");
    assert!(at("sam deploy") < follows && at("Stack outputs") < follows, "{names:?}");
    assert!(follows < at("End-to-end check") && follows < at("Publish the SPA"), "{names:?}");
}
