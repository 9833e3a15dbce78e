//! The `acidizer-ws` and `acidizer-stream` Lambda binaries, run as Lambda runs them, against DynamoDB Local and a stand-in
//! for the Management API that can answer 410, 500 or slowly.

use acidizer_core::ConnectionId;
use acidizer_core::live::ConnectionStore;
use acidizer_core::{ChangeCommand, CounterMax, CounterName, CounterStore, Delta, RequestId, Timestamp};
use acidizer_store_dynamodb::DynamoConnections;
use acidizer_store_dynamodb::{DynamoStore, create_missing_tables};
use acidizer_tests::lambda::Gateway;
use acidizer_tests::management_api::ManagementApi;
use acidizer_tests::stream_records::{self, StreamReader};
use acidizer_tests::{binaries, dynamodb_local};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Stack {
    counter_table: String,
    connections_table: String,
    dynamodb: aws_sdk_dynamodb::Client,
    management: ManagementApi,
    env: Vec<(&'static str, String)>,
}

impl Stack {
    async fn new() -> Stack {
        Self::with(ManagementApi::start().await).await
    }

    /// A stack whose Management API is `management`.
    async fn with(management: ManagementApi) -> Stack {
        let emulator = dynamodb_local::shared();
        let suffix = uuid::Uuid::new_v4().simple();
        let (counter_table, connections_table) = (format!("counters-{suffix}"), format!("connections-{suffix}"));
        let dynamodb = dynamodb_local::client(&emulator.endpoint);
        create_missing_tables(&dynamodb, &counter_table, Some(&connections_table)).await.unwrap();
        let mut env = dynamodb_local::aws_env(&emulator.endpoint);
        env.push(("COUNTER_TABLE", counter_table.clone()));
        env.push(("CONNECTIONS_TABLE", connections_table.clone()));
        env.push(("WEBSOCKET_ENDPOINT", management.endpoint.clone()));
        env.push(("ALLOWED_ORIGINS", acidizer_tests::app::ALLOWED_ORIGIN.to_owned()));
        Stack { counter_table, connections_table, dynamodb, management, env }
    }

    async fn function(&self, name: &str) -> Gateway {
        Gateway::start(&binaries::lambda(name), &self.env, 1).await
    }

    /// The connections table's item `connection_id`, if there is one.
    async fn subscription_item(
        &self,
        connection_id: &str,
    ) -> Option<std::collections::HashMap<String, AttributeValue>> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.connections_table)
            .key("connectionId", AttributeValue::S(connection_id.to_owned()))
            .send()
            .await
            .unwrap();
        item.item().cloned()
    }

    async fn subscription(&self, connection: &str) -> Option<String> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.connections_table)
            .key("connectionId", AttributeValue::S(connection.to_owned()))
            .send()
            .await
            .unwrap();
        item.item().map(|item| {
            let expires: i64 = item["expiresAt"].as_n().unwrap().parse().unwrap();
            let ttl = expires - Timestamp::now().unix_seconds();
            assert!((7000..=7200).contains(&ttl), "a subscription lives 2 h: {ttl} s");
            item["counter"].as_s().unwrap().clone()
        })
    }

    async fn increment(&self, counter: &str, times: u64) {
        let store = DynamoStore::new(self.dynamodb.clone(), self.counter_table.clone());
        for _ in 0..times {
            store
                .change(ChangeCommand {
                    counter: CounterName::parse(counter).unwrap(),
                    delta: Delta::Increment,
                    request_id: RequestId::generate(),
                    max: CounterMax::DEFAULT,
                    at: Timestamp::now(),
                    deadline: std::time::Instant::now() + Duration::from_secs(10),
                })
                .await
                .unwrap();
        }
    }

    /// Everything on the counter table's stream, as the event source mapping would hand it to `acidizer-stream`.
    async fn stream_event(&self) -> Value {
        let endpoint = &dynamodb_local::shared().endpoint;
        let mut stream = StreamReader::open(endpoint, &self.dynamodb, &self.counter_table).await;
        stream_records::event(&stream.read().await)
    }
}

fn websocket_event(route: &str, connection: &str, query: Option<Value>, body: Option<&str>) -> Value {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut event = json!({
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "extendedRequestId": "ext-1",
            "requestTime": "23/Nov/2026:10:00:00 +0000",
            "stage": "test",
            "connectedAt": 1_795_428_000_000_i64,
            "requestTimeEpoch": 1_795_428_000_000_i64,
            "identity": { "sourceIp": "127.0.0.1" },
            "requestId": "req-1",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection,
            "apiId": "abc123",
        },
        "isBase64Encoded": false,
    });
    if let Some(query) = query {
        event["queryStringParameters"] = query;
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ws_function_takes_connect_only_from_allowed_pages() {
    let stack = Stack::new().await;
    let ws = stack.function("acidizer-ws").await;
    for (id, origin, status) in [
        ("page-ok", Some(acidizer_tests::app::ALLOWED_ORIGIN), 200),
        ("not-a-page", None, 200),
        ("page-evil", Some("https://evil.example"), 403),
        ("page-null", Some("null"), 403),
    ] {
        let mut event = websocket_event("$connect", id, Some(json!({"counter": "tally"})), None);
        if let Some(origin) = origin {
            event["headers"] = json!({ "Origin": origin, "Host": "abc123.execute-api.us-east-1.amazonaws.com" });
        }
        let answer = ws.invoke(event).await.unwrap();
        assert_eq!(answer["statusCode"], status, "$connect from {origin:?}");
        let subscribed = stack.subscription(id).await;
        assert_eq!(subscribed.is_some(), status == 200, "{id} subscribed only when taken");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ws_function_subscribes_answers_and_forgets() {
    let stack = Stack::new().await;
    let ws = stack.function("acidizer-ws").await;
    let connect = |id: &str, query: Option<Value>| ws.invoke(websocket_event("$connect", id, query, None));

    let answer = connect("conn-a=", Some(json!({"counter": "tally"}))).await.unwrap();
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(stack.subscription("conn-a=").await.as_deref(), Some("tally"));
    assert_eq!(connect("conn-b+/=", None).await.unwrap()["statusCode"], 200);
    assert_eq!(stack.subscription("conn-b+/=").await.as_deref(), Some("global"), "no counter is global");
    for bad in ["Bad", "-x", ""] {
        let refused = connect("conn-bad", Some(json!({ "counter": bad }))).await.unwrap();
        assert_eq!(refused["statusCode"], 400, "counter {bad:?} is refused");
    }
    assert_eq!(stack.subscription("conn-bad").await, None);

    stack.increment("tally", 2).await;
    let message = |id: &str, body: &str| ws.invoke(websocket_event("$default", id, None, Some(body)));
    for body in [r#"{"action":"sync"}"#, r#"{"action":"ping"}"#, r#"{"action":"dance"}"#, "nonsense"] {
        assert_eq!(message("conn-a=", body).await.unwrap()["statusCode"], 200);
    }
    let replies = stack.management.delivered("conn-a=");
    assert_eq!(replies.len(), 4, "{replies:?}");
    assert_eq!(replies[0]["type"], "value");
    assert_eq!((&replies[0]["counter"], &replies[0]["value"]), (&json!("tally"), &json!(2)));
    assert!(replies[0]["updatedAt"].is_string());
    assert_eq!(replies[1], json!({"type": "pong"}));
    assert_eq!(replies[2]["type"], "error");
    assert_eq!(replies[3]["type"], "error");

    let bye = ws.invoke(websocket_event("$disconnect", "conn-a=", None, None)).await.unwrap();
    assert_eq!(bye["statusCode"], 200);
    assert_eq!(stack.subscription("conn-a=").await, None, "$disconnect forgets the connection");

    // A connection whose subscription is unknown never gets another counter's value: it is told so.
    stack.increment("global", 1).await;
    assert_eq!(message("conn-a=", r#"{"action":"sync"}"#).await.unwrap()["statusCode"], 200);
    assert_eq!(message("conn-a=", r#"{"action":"ping"}"#).await.unwrap()["statusCode"], 200);
    let replies = stack.management.delivered("conn-a=");
    assert_eq!(replies[4]["type"], "error", "{replies:?}");
    assert!(replies[4]["detail"].as_str().unwrap().contains("subscription"), "{replies:?}");
    assert_eq!(replies[5], json!({"type": "pong"}), "ping needs no subscription");
}

impl Stack {
    /// Connects `ids` to `counter` through `acidizer-ws`.
    async fn connect_all(&self, ws: &Gateway, ids: &[&str], counter: &str) {
        for id in ids {
            let answer = ws.invoke(websocket_event("$connect", id, Some(json!({ "counter": counter })), None)).await;
            assert_eq!(answer.unwrap()["statusCode"], 200);
        }
    }

    /// The sequence numbers of the counter records of `counter` in a stream event.
    fn counter_records(event: &Value) -> Vec<Value> {
        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["dynamodb"]["NewImage"]["kind"]["S"] == "counter")
            .map(|r| r["dynamodb"]["SequenceNumber"].clone())
            .collect()
    }
}

/// The function's metrics so far, once `metric` is among them: an invocation's metrics are written after its
/// answer, so they may come a moment later.
async fn totals_once_flushed(function: &Gateway, metric: &str) -> std::collections::BTreeMap<String, f64> {
    for _ in 0..50 {
        let totals = acidizer_tests::emf::totals(&function.logs());
        if totals.contains_key(metric) {
            return totals;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    acidizer_tests::emf::totals(&function.logs())
}

fn failures(answer: &Value) -> Vec<Value> {
    answer["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_function_broadcasts_a_batch_once_per_subscriber() {
    let stack = Stack::new().await;
    let ws = stack.function("acidizer-ws").await;
    let healthy: Vec<String> = (0..12).map(|i| format!("ok-{i}=")).collect();
    let healthy: Vec<&str> = healthy.iter().map(String::as_str).collect();
    stack.connect_all(&ws, &healthy, "tally").await;
    stack.connect_all(&ws, &["gone-1=="], "tally").await;
    stack.connect_all(&ws, &["other-1"], "other").await;

    stack.increment("tally", 30).await;
    let event = stack.stream_event().await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 90, "counter, audit and answer records");
    let stream = stack.function("acidizer-stream").await;
    let answer = stream.invoke(event).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}), "every subscriber was reached");

    for id in &healthy {
        let delivered = stack.management.delivered(id);
        assert_eq!(delivered.len(), 1, "{id} gets exactly one message: {delivered:?}");
        assert_eq!((&delivered[0]["type"], &delivered[0]["counter"]), (&json!("value"), &json!("tally")));
        assert_eq!(delivered[0]["value"], 30);
    }
    assert_eq!(stack.subscription("gone-1==").await, None, "a 410 connection leaves the table");
    assert!(stack.management.delivered("other-1").is_empty(), "no subscriber sees another counter's values");

    let totals = totals_once_flushed(&stream, "BroadcastDuration").await;
    assert_eq!(totals.get("SubscribersReached"), Some(&12.0), "{totals:?}");
    assert_eq!(totals.get("GoneConnections"), Some(&1.0), "{totals:?}");
    assert!(totals.get("BroadcastDuration").is_some_and(|ms| *ms > 0.0), "{totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_management_api_still_gets_the_final_value_to_everyone() {
    let stack = Stack::new().await;
    let ws = stack.function("acidizer-ws").await;
    let subscribers = ["s-1", "s-2", "s-3", "s-4"];
    stack.connect_all(&ws, &subscribers, "tally").await;
    stack.increment("tally", 10).await;
    let event = stack.stream_event().await;
    let stream = stack.function("acidizer-stream").await;

    stack.management.throttle_for(Duration::from_millis(1500));
    let answer = stream.invoke(event).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}), "retried with backoff until the throttling ended");
    for id in subscribers {
        let delivered = stack.management.delivered(id);
        assert_eq!(delivered.last().map(|m| &m["value"]), Some(&json!(10)), "{id}: {delivered:?}");
        assert!(stack.management.attempts(id) > 1, "{id} was throttled, then retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_failing_past_the_invocation_are_reported_and_get_the_value_on_the_retry() {
    let stack = Stack::new().await;
    let ws = stack.function("acidizer-ws").await;
    stack.connect_all(&ws, &["ok-1", "broken-1", "slow-1"], "tally").await;
    stack.connect_all(&ws, &["calm-1"], "calm").await;
    stack.increment("tally", 3).await;
    stack.increment("calm", 2).await;
    let event = stack.stream_event().await;
    let tally: Vec<Value> = Stack::counter_records(&event)[..3].to_vec();

    // A function with a 6 s timeout: it retries for what it can spare of that, then reports.
    let function = binaries::lambda("acidizer-stream");
    let stream = Gateway::start_with_timeout(&function, &stack.env, 1, Duration::from_secs(6)).await;
    let started = Instant::now();
    let answer = stream.invoke(event.clone()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(6), "answered before the invocation's deadline");
    assert_eq!(failures(&answer), tally, "the records of the counter that did not reach everyone");
    assert!(stack.management.attempts("broken-1") >= 3, "a 500 is retried with backoff");
    assert_eq!(stack.management.attempts("slow-1"), 1, "a slow post is not sent twice in one invocation");
    assert_eq!(stack.subscription("broken-1").await.as_deref(), Some("tally"), "a 500 is not a reason to forget");
    assert_eq!(stack.management.delivered("calm-1").len(), 1, "other counters are delivered");

    // Lambda sends the reported records again; the Management API has recovered.
    stack.management.heal();
    let mut retried = event;
    retried["Records"].as_array_mut().unwrap().retain(|r| tally.contains(&r["dynamodb"]["SequenceNumber"]));
    let answer = tokio::time::timeout(Duration::from_secs(10), stream.invoke(retried)).await.unwrap().unwrap();
    assert!(failures(&answer).is_empty() || failures(&answer) == tally, "{answer}");
    assert_eq!(stack.management.delivered("broken-1").last().map(|m| &m["value"]), Some(&json!(3)));
    assert_eq!(stack.management.delivered("ok-1").last().map(|m| &m["value"]), Some(&json!(3)));
    let totals = totals_once_flushed(&stream, "PostsFailed").await;
    assert!(totals.get("PostsFailed").is_some_and(|n| *n >= 2.0), "the broken and the slow one: {totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_function_reports_only_records_it_could_not_attempt() {
    let stack = Stack::new().await;
    stack.increment("tally", 3).await;
    let event = stack.stream_event().await;
    let counter_records: Vec<Value> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["dynamodb"]["NewImage"]["kind"]["S"] == "counter")
        .map(|r| r["dynamodb"]["SequenceNumber"].clone())
        .collect();
    assert_eq!(counter_records.len(), 3);

    let mut env = stack.env.clone();
    env.retain(|(name, _)| *name != "CONNECTIONS_TABLE");
    env.push(("CONNECTIONS_TABLE", "no-such-table".to_owned()));
    let stream = Gateway::start(&binaries::lambda("acidizer-stream"), &env, 1).await;
    let answer = stream.invoke(event.clone()).await.unwrap();
    let failed: Vec<Value> =
        answer["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].clone()).collect();
    assert_eq!(failed, counter_records, "the counter records whose subscribers could not be listed");

    let mut others = event;
    others["Records"].as_array_mut().unwrap().retain(|r| r["dynamodb"]["NewImage"]["kind"]["S"] != "counter");
    let answer = stream.invoke(others).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}), "records that are not counter changes are ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_subscribers_than_one_invocation_reaches_all_end_on_the_final_state() {
    // 200 posts a second of 50 ms each; an invocation has 3 s to broadcast: not enough for 1 000 subscribers.
    let stack = Stack::with(ManagementApi::start_limited(200.0, Duration::from_millis(50)).await).await;
    let connections = DynamoConnections::new(stack.dynamodb.clone(), stack.connections_table.clone());
    let ids: Vec<String> = (0..1000).map(|i| format!("sub-{i:04}=")).collect();
    let tally = CounterName::parse("tally").unwrap();
    futures::stream::iter(&ids)
        .for_each_concurrent(16, |id| {
            let (connections, tally) = (&connections, &tally);
            async move { connections.subscribe(&ConnectionId::parse(id).unwrap(), tally).await.unwrap() }
        })
        .await;
    stack.increment("tally", 3).await;
    let event = stack.stream_event().await;
    let stream =
        Gateway::start_with_timeout(&binaries::lambda("acidizer-stream"), &stack.env, 1, Duration::from_secs(5)).await;

    // Two more changes commit while the first invocation broadcasts.
    let later = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        stack.increment("tally", 2).await;
    };
    let (answer, ()) = tokio::join!(stream.invoke(event.clone()), later);
    let answer = answer.unwrap();
    assert_eq!(failures(&answer), [] as [Value; 0], "the newer state's records, later in the stream, take it on");
    let kept = stack.subscription_item("broadcast#tally").await.expect("where the broadcast stopped is kept");
    assert_eq!((kept["seq"].as_n().unwrap().as_str(), kept["finished"].as_bool().unwrap()), ("5", &false));

    // The event source mapping sends the next batch (the two later changes), and again while it is reported.
    let mut later = stack.stream_event().await;
    let first_batch: Vec<Value> = event["Records"].as_array().unwrap().iter().map(|r| r["eventID"].clone()).collect();
    later["Records"].as_array_mut().unwrap().retain(|r| !first_batch.contains(&r["eventID"]));
    let later_records = Stack::counter_records(&later);
    assert_eq!(later_records.len(), 2);
    let mut invocations = 1;
    loop {
        invocations += 1;
        assert!(invocations <= 6, "each invocation goes on where the last stopped");
        let answer = stream.invoke(later.clone()).await.unwrap();
        if failures(&answer).is_empty() {
            break;
        }
        assert_eq!(failures(&answer), later_records, "the newest state not yet everywhere: its records, again");
    }
    assert!(invocations >= 3, "{invocations} invocations");
    let kept = stack.subscription_item("broadcast#tally").await.unwrap();
    assert!(kept["finished"].as_bool().unwrap(), "kept as finished");

    // The first batch again (a retry, or a late copy): nothing to add.
    let posts_before = stack.management.all_delivered().values().map(Vec::len).sum::<usize>();
    assert_eq!(failures(&stream.invoke(event.clone()).await.unwrap()), [] as [Value; 0]);
    let posts_after = stack.management.all_delivered().values().map(Vec::len).sum::<usize>();
    assert_eq!(posts_after, posts_before, "a state everyone has is not sent again");

    let delivered = stack.management.all_delivered();
    // A post that timed out may still have arrived: its outcome is unknown, and it is sent again (an equal
    // message, never an older one). Only then may that subscriber see a state twice.
    let timed_out: Vec<String> = stream
        .logs()
        .lines()
        .filter(|line| line.contains("send timed out"))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| line["fields"]["connection"].as_str().map(str::to_owned))
        .collect();
    let (mut both, mut only_final) = (0, 0);
    for id in &ids {
        let seqs: Vec<u64> = delivered[id].iter().map(|(m, _)| m["seq"].as_u64().unwrap()).collect();
        let increasing = seqs.windows(2).all(|w| w[0] < w[1] || (w[0] == w[1] && timed_out.contains(id)));
        assert!(increasing, "{id}: strictly increasing {seqs:?}");
        assert_eq!(seqs.last(), Some(&5), "{id} ends on the final state: {seqs:?}");
        match seqs.as_slice() {
            [5] => only_final += 1,
            _ => both += 1,
        }
    }
    assert!(only_final > 0 && both > 0, "reached before the new state: {both}; after: {only_final}");
    let (to_one, to_all) = stack.management.most_in_flight();
    assert_eq!(to_one, 1, "at most one post in flight to a subscriber");
    let posts = ids.len() + both;
    let throttled = stack.management.throttled();
    assert!(
        throttled > 0 && throttled < posts / 4,
        "{throttled} of {posts} posts throttled; {to_all} in flight at most"
    );
    let totals = totals_once_flushed(&stream, "PostsThrottled").await;
    assert!(totals.get("PostsThrottled").is_some_and(|n| *n > 0.0), "{totals:?}");
    assert!(totals.contains_key("PostsInFlight"), "{totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ws_function_takes_only_the_listed_counters_and_as_many_subscribers_as_set() {
    let stack = Stack::new().await;
    let mut env = stack.env.clone();
    env.push(("COUNTER_NAMES", "tally".to_owned()));
    env.push(("MAX_SUBSCRIBERS_PER_COUNTER", "2".to_owned()));
    let ws = Gateway::start(&binaries::lambda("acidizer-ws"), &env, 1).await;
    let connect =
        |id: &str, counter: &str| ws.invoke(websocket_event("$connect", id, Some(json!({ "counter": counter })), None));
    for (id, counter, status) in [
        ("tally-1", "tally", 200),
        ("tally-2", "tally", 200),
        ("tally-3", "tally", 503),
        ("other-1", "other", 404),
        ("global-1", "global", 200),
        ("bad-1", "Bad", 400),
    ] {
        let answer = connect(id, counter).await.unwrap();
        assert_eq!(answer["statusCode"], status, "{id} to {counter}: {answer}");
        assert_eq!(stack.subscription(id).await.is_some(), status == 200, "{id} subscribed only when taken");
    }
    // Room again once a subscriber leaves.
    let bye = ws.invoke(websocket_event("$disconnect", "tally-1", None, None)).await.unwrap();
    assert_eq!(bye["statusCode"], 200);
    assert_eq!(connect("tally-3", "tally").await.unwrap()["statusCode"], 200);
}

/// One client (an IPv4 address, an IPv6 /64) has at most MAX_CONNECTIONS_PER_CLIENT connections: a further
/// `$connect` answers 429 and subscribes nothing, other clients still connect, and a place comes back once one of
/// its connections goes. So no one client takes all of a counter's places (MAX_SUBSCRIBERS_PER_COUNTER).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_has_at_most_its_share_of_connections() {
    let stack = Stack::new().await;
    let mut env = stack.env.clone();
    env.push(("MAX_CONNECTIONS_PER_CLIENT", "2".to_owned()));
    let ws = Gateway::start(&binaries::lambda("acidizer-ws"), &env, 1).await;
    let connect = |id: &str, ip: &str| {
        let mut event = websocket_event("$connect", id, Some(json!({ "counter": "global" })), None);
        event["requestContext"]["identity"]["sourceIp"] = json!(ip);
        ws.invoke(event)
    };
    for (id, ip, status) in [
        ("a-1", "192.0.2.1", 200),
        ("a-2", "192.0.2.1", 200),
        ("a-3", "192.0.2.1", 429),
        ("b-1", "192.0.2.2", 200),
        ("six-1", "2001:db8:1:2::1", 200),
        ("six-2", "2001:db8:1:2::ffff", 200),
        ("six-3", "2001:db8:1:2:abcd::1", 429),
        ("six-other", "2001:db8:1:3::1", 200),
    ] {
        let answer = connect(id, ip).await.unwrap();
        assert_eq!(answer["statusCode"], status, "{id} from {ip}: {answer}");
        assert_eq!(stack.subscription(id).await.is_some(), status == 200, "{id} subscribed only when taken");
    }
    let bye = ws.invoke(websocket_event("$disconnect", "a-1", None, None)).await.unwrap();
    assert_eq!(bye["statusCode"], 200);
    assert_eq!(connect("a-3", "192.0.2.1").await.unwrap()["statusCode"], 200, "a place came back");

    // Connections whose $disconnect never came stop counting once their TTL has passed, whether or not DynamoDB
    // has deleted them yet.
    for id in ["gone-1", "gone-2"] {
        stack
            .dynamodb
            .put_item()
            .table_name(&stack.connections_table)
            .item("connectionId", AttributeValue::S(id.to_owned()))
            .item("counter", AttributeValue::S("global".to_owned()))
            .item("client", AttributeValue::S("192.0.2.3".to_owned()))
            .item("expiresAt", AttributeValue::N("1700000000".to_owned()))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(connect("c-1", "192.0.2.3").await.unwrap()["statusCode"], 200, "expired connections do not count");
    assert_eq!(connect("c-2", "192.0.2.3").await.unwrap()["statusCode"], 200, "expired connections do not count");
    assert_eq!(connect("c-3", "192.0.2.3").await.unwrap()["statusCode"], 429, "live ones do");
}
