//! `infra/template.yaml` is the one source of the tables' layout: the tables the code creates (and expects)
//! must match it, key for key.

use acidizer_store_dynamodb::{create_missing_tables, layout};
use acidizer_tests::{binaries, dynamodb_local};
use serde_norway::Value;
use std::collections::BTreeMap;

/// A table's layout, as declared or as described: keys, attribute types, indexes, stream and TTL.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    keys: Vec<(String, String)>,
    attributes: BTreeMap<String, String>,
    indexes: BTreeMap<String, (Vec<(String, String)>, String)>,
    stream: Option<String>,
    ttl: Option<String>,
}

fn template() -> Value {
    let text = std::fs::read_to_string(binaries::repo_root().join("infra/template.yaml")).expect("the template");
    serde_norway::from_str(&text).expect("the template is YAML")
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("a string, not {value:?}")).to_owned()
}

fn key_schema(value: &Value) -> Vec<(String, String)> {
    value
        .as_sequence()
        .expect("a KeySchema list")
        .iter()
        .map(|key| (text(&key["AttributeName"]), text(&key["KeyType"])))
        .collect()
}

fn declared(resource: &str) -> Layout {
    let template = template();
    let table = &template["Resources"][resource];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table", "{resource} is a table");
    let properties = &table["Properties"];
    let attributes = properties["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
        .collect();
    let indexes = properties["GlobalSecondaryIndexes"]
        .as_sequence()
        .map(|indexes| {
            indexes
                .iter()
                .map(|index| {
                    let projection = text(&index["Projection"]["ProjectionType"]);
                    (text(&index["IndexName"]), (key_schema(&index["KeySchema"]), projection))
                })
                .collect()
        })
        .unwrap_or_default();
    let ttl = &properties["TimeToLiveSpecification"];
    Layout {
        keys: key_schema(&properties["KeySchema"]),
        attributes,
        indexes,
        stream: properties["StreamSpecification"]["StreamViewType"].as_str().map(str::to_owned),
        ttl: (ttl["Enabled"].as_bool() == Some(true)).then(|| text(&ttl["AttributeName"])),
    }
}

async fn created(client: &aws_sdk_dynamodb::Client, table: &str) -> Layout {
    let description = client.describe_table().table_name(table).send().await.unwrap();
    let table_description = description.table().unwrap();
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        schema.iter().map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned())).collect()
    };
    let ttl = client.describe_time_to_live().table_name(table).send().await.unwrap();
    let ttl = ttl.time_to_live_description().and_then(|d| d.attribute_name()).map(str::to_owned);
    Layout {
        keys: keys(table_description.key_schema()),
        attributes: table_description
            .attribute_definitions()
            .iter()
            .map(|a| (a.attribute_name().to_owned(), a.attribute_type().as_str().to_owned()))
            .collect(),
        indexes: table_description
            .global_secondary_indexes()
            .iter()
            .map(|index| {
                let projection = index.projection().and_then(|p| p.projection_type()).map(|p| p.as_str().to_owned());
                (index.index_name().unwrap().to_owned(), (keys(index.key_schema()), projection.unwrap_or_default()))
            })
            .collect(),
        stream: table_description
            .stream_specification()
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_owned()),
        ttl,
    }
}

#[test]
fn the_template_declares_the_layout_the_code_uses() {
    let counters = declared("CounterTable");
    assert_eq!(
        counters.keys,
        [(layout::PARTITION_KEY.to_owned(), "HASH".to_owned()), (layout::SORT_KEY.to_owned(), "RANGE".to_owned())]
    );
    assert_eq!(counters.stream.as_deref(), Some(layout::STREAM_VIEW.as_str()));
    assert_eq!(counters.ttl.as_deref(), Some(layout::TTL_ATTRIBUTE));
    let template = template();
    let properties = &template["Resources"]["CounterTable"]["Properties"];
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::from(true),
        "the counter table has point-in-time recovery"
    );

    let connections = declared("ConnectionsTable");
    assert_eq!(connections.keys, [(layout::CONNECTION_KEY.to_owned(), "HASH".to_owned())]);
    assert_eq!(connections.ttl.as_deref(), Some(layout::TTL_ATTRIBUTE));
    let (index_keys, _) = &connections.indexes[layout::SUBSCRIBERS_INDEX];
    assert_eq!(index_keys[0], (layout::SUBSCRIBERS_INDEX_KEY.to_owned(), "HASH".to_owned()));
}

#[tokio::test]
async fn the_tables_the_code_creates_match_the_template() {
    let emulator = dynamodb_local::shared();
    let client = dynamodb_local::client(&emulator.endpoint);
    let suffix = uuid::Uuid::new_v4().simple();
    let (counter_table, connections_table) = (format!("layout-c-{suffix}"), format!("layout-w-{suffix}"));
    create_missing_tables(&client, &counter_table, Some(&connections_table)).await.unwrap();
    assert_eq!(created(&client, &counter_table).await, declared("CounterTable"));
    assert_eq!(created(&client, &connections_table).await, declared("ConnectionsTable"));
    // Creating again is a no-op: `--create-tables` is safe on every start.
    create_missing_tables(&client, &counter_table, Some(&connections_table)).await.unwrap();
}

#[test]
fn the_alarms_and_dashboard_watch_the_metrics_the_functions_emit() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut alarmed = Vec::new();
    for (_, resource) in resources {
        let namespace = resource["Properties"]["Namespace"].as_str();
        let aws_metric = namespace.is_some_and(|namespace| namespace.starts_with("AWS/"));
        if resource["Type"] == "AWS::CloudWatch::Alarm" && !aws_metric {
            alarmed.push(text(&resource["Properties"]["MetricName"]));
        }
    }
    assert!(!alarmed.is_empty(), "some alarms watch the functions' own metrics");
    for name in &alarmed {
        assert!(acidizer_core::telemetry::ALL.contains(&name.as_str()), "alarm on {name}, which nothing emits");
    }
    let dashboard = serde_norway::to_string(&template["Resources"]["Dashboard"]).unwrap();
    for name in acidizer_core::telemetry::ALL {
        assert!(dashboard.contains(&format!("\"{name}\"")), "the dashboard shows {name}");
    }
}

#[test]
fn the_functions_get_the_environment_the_code_reads() {
    let template = template();
    let expected = [
        ("ApiFunction", "acidizer-api", vec!["ALLOWED_ORIGINS", "COUNTER_MAX", "COUNTER_TABLE"]),
        (
            "WsFunction",
            "acidizer-ws",
            vec!["ALLOWED_ORIGINS", "CONNECTIONS_TABLE", "COUNTER_TABLE", "WEBSOCKET_ENDPOINT"],
        ),
        ("StreamFunction", "acidizer-stream", vec!["CONNECTIONS_TABLE", "WEBSOCKET_ENDPOINT"]),
    ];
    let by_template: Vec<(&str, &str)> = expected.iter().map(|(id, binary, _)| (*binary, *id)).collect();
    assert_eq!(by_template, binaries::TEMPLATE_FUNCTIONS, "sam build puts each bootstrap under its logical id");
    let global: Vec<String> =
        template["Globals"]["Function"]["Environment"]["Variables"].as_mapping().unwrap().keys().map(text).collect();
    assert_eq!(global, [acidizer_lambda::METRICS_NAMESPACE_ENV]);
    for (resource, binary, variables) in expected {
        let function = &template["Resources"][resource];
        assert_eq!(function["Metadata"]["BuildMethod"], "rust-cargolambda");
        assert_eq!(text(&function["Metadata"]["BuildProperties"]["Binary"]), binary);
        let mut names: Vec<String> =
            function["Properties"]["Environment"]["Variables"].as_mapping().unwrap().keys().map(text).collect();
        names.sort();
        assert_eq!(names, variables, "{resource}'s environment");
    }
    assert_eq!(acidizer_store_dynamodb::COUNTER_TABLE_ENV, "COUNTER_TABLE");
    assert_eq!(acidizer_core::domain::COUNTER_MAX_ENV, "COUNTER_MAX");
    let ceiling = &template["Parameters"]["CounterMax"];
    assert_eq!(ceiling["Default"].as_u64(), Some(acidizer_core::CounterMax::DEFAULT.get()));
    assert_eq!(ceiling["MaxValue"].as_u64(), Some(acidizer_core::domain::LARGEST_CEILING));
    assert_eq!(acidizer_store_dynamodb::CONNECTIONS_TABLE_ENV, "CONNECTIONS_TABLE");
    assert_eq!(acidizer_apigw::WEBSOCKET_ENDPOINT_ENV, "WEBSOCKET_ENDPOINT");
    assert_eq!(acidizer_core::ALLOWED_ORIGINS_ENV, "ALLOWED_ORIGINS");
}

/// The template through the SAM transform, as CloudFormation receives it (`tests/support/sam_transform.py`).
fn transformed(parameters: &[&str]) -> serde_json::Value {
    let root = binaries::repo_root();
    let output = std::process::Command::new("python3")
        .arg(root.join("tests/support/sam_transform.py"))
        .arg(root.join("infra/template.yaml"))
        .args(parameters)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the SAM transform failed:\n{stderr}");
    serde_json::from_slice(&output.stdout).expect("the transform prints JSON")
}

/// The HTTP API's CORS configuration survives the SAM transform whole — origins, methods, headers, exposed
/// headers and max age — for any origin and for a list of them.
#[test]
fn cors_survives_the_sam_transform() {
    let site = serde_json::json!([{"Fn::Sub": "https://${SiteDistribution.DomainName}"}]);
    let list = serde_json::json!({"Fn::Split": [",", "https://a.example,https://b.example"]});
    for (parameters, origins) in [
        (vec![], site),
        (vec!["AllowedOrigins=*"], serde_json::json!(["*"])),
        (vec!["AllowedOrigins=https://a.example,https://b.example"], list),
    ] {
        let template = transformed(&parameters);
        let cors = &template["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"];
        // Fn::If [AnyOrigin, any, Fn::If [SiteOrigin, the site, the list]]
        let outer = cors["Fn::If"].as_array().unwrap_or_else(|| panic!("one condition over the whole: {cors}"));
        let inner = outer[2]["Fn::If"].as_array().unwrap_or_else(|| panic!("then one for the site: {cors}"));
        assert_eq!((&outer[0], &inner[0]), (&serde_json::json!("AnyOrigin"), &serde_json::json!("SiteOrigin")));
        let branches = [&outer[1], &inner[1], &inner[2]];
        let chosen = match parameters.first().copied() {
            None => branches[1],
            Some("AllowedOrigins=*") => branches[0],
            Some(_) => branches[2],
        };
        assert_eq!(chosen["allowOrigins"], origins, "{cors}");
        for branch in branches {
            assert_eq!(branch["allowMethods"], serde_json::json!(["GET", "POST", "OPTIONS"]), "{cors}");
            assert_eq!(branch["allowHeaders"], serde_json::json!(["content-type", "idempotency-key"]), "{cors}");
            let exposed = serde_json::json!(["idempotent-replayed", "x-request-id", "retry-after"]);
            assert_eq!(branch["exposeHeaders"], exposed, "{cors}");
            assert_eq!(branch["maxAge"], 600, "{cors}");
        }
        assert_eq!(template["Conditions"]["AnyOrigin"]["Fn::Equals"][1], "*", "AnyOrigin holds for * alone");
        assert_eq!(template["Conditions"]["SiteOrigin"]["Fn::Equals"][1], "", "SiteOrigin holds for nothing named");
    }
}

/// The canary judges the new version alone, on its failed invocations and on its 5xx answers.
#[test]
fn the_canary_rolls_back_on_the_new_versions_errors_and_5xx() {
    let template = transformed(&[]);
    let resources = template["Resources"].as_object().unwrap();
    let group = resources
        .values()
        .find(|r| {
            r["Type"] == "AWS::CodeDeploy::DeploymentGroup"
                && r["Properties"]["AlarmConfiguration"]["Alarms"].to_string().contains("ApiServerErrorsAlarm")
        })
        .expect("acidizer-api's deployment group watches ApiServerErrorsAlarm");
    assert!(group["Properties"]["AlarmConfiguration"]["Alarms"].to_string().contains("ApiErrorsAlarm"));
    let version = |alarm: &str| {
        let dimensions = resources[alarm]["Properties"]["Dimensions"].as_array().unwrap().clone();
        dimensions
            .into_iter()
            .find(|d| d["Name"] == "ExecutedVersion" || d["Name"] == "Version")
            .map(|d| d["Value"].clone())
    };
    for (alarm, function) in
        [("ApiErrorsAlarm", "ApiFunction"), ("WsErrorsAlarm", "WsFunction"), ("StreamErrorsAlarm", "StreamFunction")]
    {
        let value = version(alarm).unwrap_or_else(|| panic!("{alarm} is scoped to a version"));
        assert!(value["Fn::GetAtt"][0].as_str().unwrap().starts_with(&format!("{function}Version")), "{value}");
    }
    assert_eq!(resources["ApiServerErrorsAlarm"]["Properties"]["MetricName"], acidizer_core::telemetry::SERVER_ERRORS);
    assert!(version("ApiServerErrorsAlarm").is_some());
}
