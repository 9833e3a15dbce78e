//! `infra/template.yaml` is the one source of the tables' layout: the tables the code creates (and expects)
//! must match it, key for key.

use acidizer_store_dynamodb::{create_missing_tables, layout};
use acidizer_tests::cloudformation::{resource, text_json, transformed, transformed_file};
use acidizer_tests::deploy_job::{deploy_job, deploy_run};
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

/// An index's projection: its type, and the attributes it adds to the keys.
fn projected(kind: String, mut attributes: Vec<String>) -> String {
    attributes.sort();
    format!("{kind} {}", attributes.join(","))
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
                    let projection = &index["Projection"];
                    let attributes = projection["NonKeyAttributes"].as_sequence().map(|a| a.iter().map(text).collect());
                    let projection = projected(text(&projection["ProjectionType"]), attributes.unwrap_or_default());
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
                let projection = index.projection().expect("a projection");
                let kind = projection.projection_type().map(|p| p.as_str().to_owned()).unwrap_or_default();
                let projection = projected(kind, projection.non_key_attributes().to_vec());
                (index.index_name().unwrap().to_owned(), (keys(index.key_schema()), projection))
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
    // A client's connections, counted unless expired: the index carries their TTL.
    let (index_keys, projection) = &connections.indexes[layout::CLIENTS_INDEX];
    assert_eq!(index_keys[0], (layout::CLIENTS_INDEX_KEY.to_owned(), "HASH".to_owned()));
    assert_eq!(projection, &format!("INCLUDE {}", layout::TTL_ATTRIBUTE));
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
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let properties = &resource["Properties"];
        // An alarm watches one metric, or several through metric math.
        let watched: Vec<&Value> = match properties["Metrics"].as_sequence() {
            Some(metrics) => metrics.iter().map(|m| &m["MetricStat"]["Metric"]).filter(|m| !m.is_null()).collect(),
            None => vec![properties],
        };
        for metric in watched {
            let aws_metric = metric["Namespace"].as_str().is_some_and(|namespace| namespace.starts_with("AWS/"));
            if !aws_metric {
                alarmed.push(text(&metric["MetricName"]));
            }
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
        ("ApiFunction", "acidizer-api", vec!["ALLOWED_ORIGINS", "COUNTER_MAX", "COUNTER_NAMES", "COUNTER_TABLE"]),
        (
            "WsFunction",
            "acidizer-ws",
            vec![
                "ALLOWED_ORIGINS",
                "CONNECTIONS_TABLE",
                "COUNTER_NAMES",
                "COUNTER_TABLE",
                "MAX_CONNECTIONS_PER_CLIENT",
                "MAX_SUBSCRIBERS_PER_COUNTER",
                "WEBSOCKET_ENDPOINT",
            ],
        ),
        (
            "StreamFunction",
            "acidizer-stream",
            vec!["CONNECTIONS_TABLE", "COUNTER_TABLE", "MAX_POSTS_IN_FLIGHT", "WEBSOCKET_ENDPOINT"],
        ),
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

/// The HTTP API's CORS configuration survives the transforms whole — origins, methods, headers, exposed headers
/// and max age — for any origin and for a list of them. (AWS::LanguageExtensions settles the template's one condition
/// over the whole configuration, and splits the list, before SAM reads it.) The stack's own site calls the API on its
/// own address, through the edge: it needs no CORS, and the API allows no other origin.
#[test]
fn cors_survives_the_sam_transform() {
    let list = serde_json::json!(["https://a.example", "https://b.example"]);
    for (parameters, origins) in [
        (vec!["AllowedOrigins=*"], serde_json::json!(["*"])),
        (vec!["AllowedOrigins=https://a.example,https://b.example"], list),
    ] {
        let template = transformed(&parameters);
        let cors = &template["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"];
        assert_eq!(cors["allowOrigins"], origins, "{parameters:?}: {cors}");
        assert_eq!(cors["allowMethods"], serde_json::json!(["GET", "POST", "OPTIONS"]), "{cors}");
        assert_eq!(cors["allowHeaders"], serde_json::json!(["content-type", "idempotency-key"]), "{cors}");
        let exposed = serde_json::json!(["idempotent-replayed", "x-request-id", "retry-after"]);
        assert_eq!(cors["exposeHeaders"], exposed, "{cors}");
        assert_eq!(cors["maxAge"], 600, "{cors}");
        assert_eq!(template["Conditions"]["AnyOrigin"]["Fn::Equals"][1], "*", "AnyOrigin holds for * alone");
        assert_eq!(template["Conditions"]["SiteOrigin"]["Fn::Equals"][1], "", "SiteOrigin holds for nothing named");
    }
    let template = transformed(&[]);
    let body = &resource(&template, "HttpApi")["Properties"]["Body"];
    assert!(body.get("x-amazon-apigateway-cors").is_none(), "no CORS for the site's own calls: {body}");
    let variables = &resource(&template, "ApiFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["ALLOWED_ORIGINS"], serde_json::json!({"Ref": "AllowedOrigins"}));
    assert_eq!(template["Parameters"]["AllowedOrigins"]["Default"], "");
}

/// The template as CloudFormation receives it — for each choice of the parameters that changes its shape — passes
/// cfn-lint with no error. Above all no circular dependency (E3004), which CloudFormation refuses before it makes
/// anything, and which the template before its transforms does not show: SAM adds the aliases, their hooks and
/// CodeDeploy's groups.
#[test]
fn the_transformed_template_has_no_error_and_no_cycle() {
    let dir = tempfile::tempdir().unwrap();
    for parameters in [vec![], vec!["Compute=ManagedInstances"], vec!["AllowedOrigins=*"], vec!["CounterNames=global"]]
    {
        let path = dir.path().join("transformed.json");
        std::fs::write(&path, transformed(&parameters).to_string()).unwrap();
        let output = std::process::Command::new("cfn-lint")
            .args(["--format", "parseable"])
            .arg(&path)
            .output()
            .expect("cfn-lint runs (tests/tools/.venv/bin on PATH)");
        let printed = String::from_utf8_lossy(&output.stdout);
        let errors: Vec<&str> =
            printed.lines().filter(|line| line.split(':').nth(5).is_some_and(|rule| rule.starts_with('E'))).collect();
        assert!(errors.is_empty(), "{parameters:?}: {errors:#?}");
        assert_ne!(output.status.code(), None, "{parameters:?}: cfn-lint was killed");
        assert_eq!(output.status.code().unwrap_or(0) & 2, 0, "{parameters:?}: cfn-lint found errors:\n{printed}");
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

/// The published version acidizer-api's alias points at.
fn api_version(template: &serde_json::Value) -> &serde_json::Value {
    let version = &resource(template, "ApiFunctionAliaslive")["Properties"]["FunctionVersion"]["Fn::GetAtt"][0];
    resource(template, version.as_str().expect("the alias names its version"))
}

/// Compute chooses where acidizer-api runs, on its one definition (alias, canary, events, alarms). OnDemand, the
/// default, is Lambda's own fleet and nothing at rest: no capacity provider on the function, and the Managed
/// Instances resources all stand under their condition. ManagedInstances puts the function on a capacity provider
/// of its own, in a VPC whose only way out is the gateway endpoint to DynamoDB.
#[test]
fn compute_chooses_lambda_or_managed_instances_for_acidizer_api() {
    use serde_json::json;
    let managed_resource = |r: &serde_json::Value| {
        let kind = r["Type"].as_str().unwrap_or_default();
        kind.starts_with("AWS::EC2::") || kind == "AWS::Lambda::CapacityProvider"
    };

    // On demand, as every stage so far: Lambda's fleet, 256 MB, the reserved concurrency asked for.
    let template = transformed(&["ApiReservedConcurrency=10"]);
    assert_eq!(template["Parameters"]["Compute"]["Default"], "OnDemand");
    let condition = json!({"Fn::Equals": [{"Ref": "Compute"}, "ManagedInstances"]});
    assert_eq!(template["Conditions"]["ManagedInstances"], condition);
    let function = &resource(&template, "ApiFunction")["Properties"];
    assert_eq!(function["CapacityProviderConfig"], serde_json::Value::Null, "{function}");
    assert_eq!(function["MemorySize"], 256);
    assert_eq!(function["FunctionName"], json!({"Fn::Sub": "acidizer-${StageName}-api"}));
    assert_eq!(function["ReservedConcurrentExecutions"], json!({"Ref": "ApiReservedConcurrency"}));
    assert_eq!(api_version(&template)["DeletionPolicy"], "Retain", "versions stay, as before");
    let resources = template["Resources"].as_object().unwrap();
    let managed: Vec<&String> = resources.iter().filter(|(_, r)| managed_resource(r)).map(|(id, _)| id).collect();
    assert!(managed.len() >= 8, "the capacity provider and its VPC are declared: {managed:?}");
    for (id, r) in resources {
        if managed_resource(r) || id.starts_with("ApiCapacityProvider") {
            assert_eq!(r["Condition"], "ManagedInstances", "{id} exists only on ManagedInstances");
        } else {
            assert_ne!(r["Condition"], "ManagedInstances", "{id} exists on either compute");
        }
    }

    // On Managed Instances: the same function, on the capacity provider, 2 GB environments of one vCPU taking
    // ManagedInstancesConcurrency invocations each (32 unless set); no reserved concurrency (the vCPUs bound it).
    let template = transformed(&["Compute=ManagedInstances", "ApiReservedConcurrency=10"]);
    assert_eq!(template["Parameters"]["ManagedInstancesConcurrency"]["Default"], 32);
    let function = &resource(&template, "ApiFunction")["Properties"];
    let arn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:capacity-provider:${ApiCapacityProvider}";
    let config = json!({"LambdaManagedInstancesCapacityProviderConfig": {
        "CapacityProviderArn": {"Fn::Sub": arn},
        "PerExecutionEnvironmentMaxConcurrency": {"Ref": "ManagedInstancesConcurrency"},
        "ExecutionEnvironmentMemoryGiBPerVCpu": 2,
    }});
    assert_eq!(function["CapacityProviderConfig"], config);
    assert_eq!(function["MemorySize"], 2048);
    assert_eq!(function["FunctionName"], json!({"Fn::Sub": "acidizer-${StageName}-api-mi"}), "a switch replaces it");
    assert_eq!(function["ReservedConcurrentExecutions"], serde_json::Value::Null, "{function}");
    assert_eq!(function["VpcConfig"], serde_json::Value::Null, "the capacity provider holds the network");
    assert_eq!(api_version(&template)["DeletionPolicy"], "Delete", "a version gone takes its environments along");
    let group = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::CodeDeploy::DeploymentGroup")
        .expect("the canary stays");
    assert!(group["Properties"]["AlarmConfiguration"]["Alarms"].to_string().contains("ApiServerErrorsAlarm"));

    let provider = resource(&template, "ApiCapacityProvider");
    assert_eq!(provider["Type"], "AWS::Lambda::CapacityProvider");
    assert_eq!(provider["Condition"], "ManagedInstances");
    let properties = &provider["Properties"];
    assert_eq!(properties["CapacityProviderName"], json!({"Fn::Sub": "acidizer-${StageName}-api"}));
    let network = json!({"SubnetIds": [{"Ref": "ComputeSubnetA"}, {"Ref": "ComputeSubnetB"}],
        "SecurityGroupIds": [{"Ref": "ComputeSecurityGroup"}]});
    assert_eq!(properties["VpcConfig"], network);
    assert_eq!(properties["InstanceRequirements"], json!({"Architectures": [{"Ref": "Architecture"}]}));
    assert_eq!(properties["CapacityProviderScalingConfig"]["MaxVCpuCount"], json!({"Ref": "ManagedInstancesMaxVCpus"}));
    let operator = json!({"Fn::GetAtt": ["ApiCapacityProviderOperatorRole", "Arn"]});
    assert_eq!(properties["PermissionsConfig"]["CapacityProviderOperatorRoleArn"], operator);
    assert_eq!(resource(&template, "ApiCapacityProviderOperatorRole")["Condition"], "ManagedInstances");

    // Two private subnets in two Availability Zones, one route table, and no way to the internet.
    for (subnet, zone) in [("ComputeSubnetA", 0), ("ComputeSubnetB", 1)] {
        let properties = &resource(&template, subnet)["Properties"];
        assert_eq!(properties["VpcId"], json!({"Ref": "ComputeVpc"}));
        assert_eq!(properties["AvailabilityZone"], json!({"Fn::Select": [zone, {"Fn::GetAZs": ""}]}));
        assert_eq!(properties["MapPublicIpOnLaunch"], false);
        let association = &resource(&template, &format!("{subnet}Routes"))["Properties"];
        assert_eq!(*association, json!({"SubnetId": {"Ref": subnet}, "RouteTableId": {"Ref": "ComputeRouteTable"}}));
    }
    for (id, r) in template["Resources"].as_object().unwrap() {
        let kind = r["Type"].as_str().unwrap();
        let no_way_out = ["AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::Route", "AWS::EC2::EIP"];
        assert!(!no_way_out.contains(&kind), "{id}: {kind}");
    }
    let endpoint = resource(&template, "DynamoDbEndpoint");
    assert_eq!(endpoint["Condition"], "ManagedInstances");
    let properties = &endpoint["Properties"];
    assert_eq!(properties["VpcEndpointType"], "Gateway");
    assert_eq!(properties["ServiceName"], json!({"Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"}));
    assert_eq!(properties["RouteTableIds"], json!([{"Ref": "ComputeRouteTable"}]));
    assert_eq!(
        properties["PolicyDocument"]["Statement"][0]["Resource"],
        json!({"Fn::GetAtt": ["CounterTable", "Arn"]})
    );
    let group = &resource(&template, "ComputeSecurityGroup")["Properties"];
    assert_eq!(group["SecurityGroupIngress"], serde_json::Value::Null, "nothing comes in");
    let egress = group["SecurityGroupEgress"].as_array().expect("egress rules");
    assert_eq!(egress.len(), 1, "{egress:?}");
    assert_eq!(
        (&egress[0]["IpProtocol"], &egress[0]["FromPort"], &egress[0]["ToPort"]),
        (&json!("tcp"), &json!(443), &json!(443))
    );
}

// ---------------------------------------------------------------- the deployment and the pipeline

/// A CloudFormation template of the repository as JSON, its short-form functions (`!Sub`, `!Ref`, …) in their
/// long form, as SAM's own YAML reader gives them.
fn cloudformation(relative: &str) -> serde_json::Value {
    let path = binaries::repo_root().join(relative);
    let script = "import json, sys\nfrom samtranslator.yaml_helper import yaml_parse\n\
                  json.dump(yaml_parse(open(sys.argv[1], encoding='utf-8').read()), sys.stdout)";
    let output = std::process::Command::new("python3").args(["-c", script]).arg(&path).output().expect("python3 runs");
    assert!(output.status.success(), "{relative}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(binaries::repo_root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The statements of the inline policies of `role` (a resource of a template as JSON), each with its policy's name.
fn statements(role: &serde_json::Value) -> Vec<serde_json::Value> {
    role["Properties"]["Policies"]
        .as_array()
        .map(|policies| {
            policies
                .iter()
                .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// A statement's actions or resources, one or a list, as a list.
fn listed(value: &serde_json::Value) -> Vec<serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn actions(statement: &serde_json::Value) -> Vec<String> {
    listed(&statement["Action"]).iter().map(|a| a.as_str().expect("an action").to_owned()).collect()
}

/// Whether the IAM action pattern `pattern` (with `*` wildcards, case-insensitive) matches `action`.
fn matches(pattern: &str, action: &str) -> bool {
    let (pattern, action) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = action.as_str();
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            let Some(after) = rest.strip_prefix(part) else { return false };
            rest = after;
        } else if index == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

/// A stage's first deployment can fail and be tried again. Nothing of it is retained: the counter table goes with a
/// rolled-back first deployment (RetainExceptOnCreate), and that deployment makes it without deletion protection,
/// which would otherwise stop the rollback (ROLLBACK_FAILED); the connections table has no protection that its
/// Delete policy contradicts; the logging role of infra/github-oidc.yaml, whose name is fixed, is not retained from a
/// failed create either. deploy.yml deploys a new stage twice, unprotected then protected, and refuses a stack a
/// failed first deployment left behind.
#[test]
fn a_first_deployment_can_fail_and_be_tried_again() {
    let template = transformed(&[]);
    let resources = template["Resources"].as_object().unwrap();
    let counters = resource(&template, "CounterTable");
    assert_eq!(counters["DeletionPolicy"], "RetainExceptOnCreate");
    assert_eq!(counters["Properties"]["DeletionProtectionEnabled"], true, "protected unless told otherwise");
    let first = transformed(&["TableDeletionProtection=false"]);
    assert_eq!(resource(&first, "CounterTable")["Properties"]["DeletionProtectionEnabled"], false);
    for (id, r) in resources {
        let protected = r["Properties"]["DeletionProtectionEnabled"] == true;
        assert!(!(protected && r["DeletionPolicy"] == "Delete"), "{id}: deleted with the stack, yet protected");
        if r["Type"] != "AWS::Lambda::Version" {
            assert_ne!(r["DeletionPolicy"], "Retain", "{id} would outlive a failed first deployment");
        }
    }
    assert_eq!(resource(&template, "ConnectionsTable")["Properties"]["DeletionProtectionEnabled"], false);
    let roles = cloudformation("infra/github-oidc.yaml");
    for (id, r) in roles["Resources"].as_object().unwrap() {
        assert_ne!(r["DeletionPolicy"], "Retain", "{id} would outlive a failed first deployment of the roles");
    }
    assert_eq!(roles["Resources"]["ApiGatewayLogsRoleResource"]["DeletionPolicy"], "RetainExceptOnCreate");
    assert_eq!(roles["Resources"]["ApiGatewayAccount"]["DeletionPolicy"], "RetainExceptOnCreate");

    let first_step = deploy_run("Is this the stage's first deployment?");
    assert!(first_step.contains("ROLLBACK_COMPLETE") && first_step.contains("exit 1"), "{first_step}");
    assert!(first_step.contains("does not exist"), "{first_step}");
    let deploy = deploy_run("sam deploy");
    assert!(deploy.contains("\"TableDeletionProtection=$1\""), "{deploy}");
    let unprotected = deploy.find("deploy false").expect("a first deployment without protection");
    let protected = deploy.rfind("deploy true").expect("then with it");
    assert!(deploy[..unprotected].contains("if [ \"$FIRST\" = true ]"), "{deploy}");
    assert!(unprotected < protected && deploy[protected..].trim() == "deploy true", "{deploy}");
}

/// The Region is set once, in samconfig.toml: deploy.yml reads it from there (no default of its own), and every
/// command of the README's deployment names the same one.
#[test]
fn the_region_is_pinned_in_one_place() {
    let samconfig = read("samconfig.toml");
    let section = samconfig.split("[default.global.parameters]").nth(1).expect("the default global parameters");
    let region = section
        .lines()
        .find_map(|line| line.strip_prefix("region = "))
        .map(|value| value.trim_matches('"').to_owned())
        .expect("samconfig.toml pins the region");
    assert_eq!(region, "us-east-1", "where a CloudFront web ACL can be made in the same stack");
    let workflow = read(".github/workflows/deploy.yml");
    assert!(!workflow.contains("AWS_REGION"), "deploy.yml takes the region from samconfig.toml alone");
    let step = deploy_run("The Region");
    assert!(step.contains("samconfig.toml") && step.contains("[\"region\"]"), "{step}");
    let job = deploy_job();
    let credentials = job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials")))
        .expect("the credentials step")
        .clone();
    assert_eq!(credentials["with"]["aws-region"], "${{ steps.region.outputs.value }}");
    assert!(deploy_run("sam deploy").contains("--region \"${REGION}\""));

    // The README's deployment: each command of its code blocks that reaches AWS names the region.
    let deploying = readme_deploying();
    let mut checked = 0;
    for block in deploying.split("```sh").skip(1) {
        let block = block.split("```").next().unwrap().replace("\\\n", " ");
        for command in block.lines().filter(|line| line.contains("aws ") || line.contains("sam deploy")) {
            checked += 1;
            assert!(command.contains(&format!("--region {region}")), "no --region {region}: {command}");
        }
    }
    assert!(checked >= 5, "the README's deployment has its commands ({checked})");
    for other in ["eu-west-1", "us-west-2", "eu-central-1"] {
        assert!(!deploying.contains(other), "the README names {other}");
    }
    let publish = read("infra/publish-site.sh");
    assert!(publish.contains("samconfig.toml") && publish.contains("export AWS_REGION"), "{publish}");
}

/// The README's deployment section.
fn readme_deploying() -> String {
    let readme = read("README.md");
    let deploying = readme.split("## Deploy to AWS").nth(1).expect("a deployment section");
    deploying.split("\n## ").next().unwrap().to_owned()
}

/// The README's first-deploy checklist: what a new account needs first (CloudFront's verification, an existing OIDC
/// provider, the environment made before the first push), and each step with what it prints.
#[test]
fn the_readme_has_a_first_deploy_checklist() {
    let deploying = readme_deploying();
    assert!(deploying.contains("CloudFront") && deploying.contains("verif"), "the README tells of CloudFront's check");
    assert!(deploying.contains("OidcProvider=existing"), "the README tells how to use an existing OIDC provider");
    assert!(deploying.contains("before the first push"), "the README has the environment made before the first push");

    // The first-deploy checklist: every step says what it prints.
    let checklist = deploying.split("### The first deploy").nth(1).expect("a first-deploy checklist");
    let checklist = checklist.split("\nOutputs:").next().unwrap();
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in checklist.split_inclusive('\n') {
        if line.len() > 2 && line.as_bytes()[0].is_ascii_digit() && line[1..].starts_with(". ") {
            starts.push(offset);
        }
        offset += line.len();
    }
    assert_eq!(starts.len(), 5, "five steps:\n{checklist}");
    // What the steps say they print is what the scripts print.
    assert!(checklist.contains("`seq N arrived (M messages)`") && read("tests/smoke.sh").contains("arrived ($(wc -l"));
    assert!(checklist.contains("`published: https://") && read("infra/publish-site.sh").contains("echo \"published: "));
    // The concurrency a new account needs is what the stage reserves.
    let template = transformed(&[]);
    let reserved: u64 = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|r| match &r["Properties"]["ReservedConcurrentExecutions"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::Object(reference) => {
                let parameter = reference["Ref"].as_str().expect("a parameter");
                template["Parameters"][parameter]["Default"].as_u64()
            }
            _ => None,
        })
        .sum();
    let claimed = format!("the stage reserves {reserved} concurrent executions");
    assert!(checklist.contains(&claimed), "the checklist says {claimed}");
    starts.push(checklist.len());
    for (index, range) in starts.windows(2).enumerate() {
        let step = &checklist[range[0]..range[1]];
        assert!(step.contains("print"), "step {} says what it prints:\n{step}", index + 1);
    }
}

/// Any change of a function's configuration publishes a new version, so that the alias (and the canary) moves to
/// it: SAM names a version after every property of its function (AutoPublishAliasAllProperties) when no digest is
/// given, and deploy.yml's digest, which names the versions when it is given, covers the built template and every
/// parameter value it passes.
#[test]
fn a_configuration_change_publishes_new_versions() {
    let source = read("infra/template.yaml");
    let versions = |template: &serde_json::Value| -> BTreeMap<String, String> {
        ["ApiFunction", "WsFunction", "StreamFunction"]
            .into_iter()
            .map(|function| {
                let alias = resource(template, &format!("{function}Aliaslive"));
                let version = text_json(&alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]);
                assert!(version.starts_with(&format!("{function}Version")), "{version}");
                (function.to_owned(), version)
            })
            .collect()
    };
    let directory = tempfile::tempdir().unwrap();
    let changed = |from: &str, to: &str, name: &str| {
        assert_eq!(source.matches(from).count(), 1, "{from:?} once in the template");
        let path = directory.path().join(name);
        std::fs::write(&path, source.replace(from, to)).unwrap();
        path
    };
    let before = versions(&transformed(&[]));

    // The memory of the functions that take it from Globals (acidizer-stream sets its own): their versions are new.
    let memory = changed("    MemorySize: 256\n", "    MemorySize: 512\n", "memory.yaml");
    let after = versions(&transformed_file(&memory, &[]));
    for function in ["ApiFunction", "WsFunction"] {
        assert_ne!(after[function], before[function], "{function}: a new MemorySize, a new version");
    }
    // acidizer-stream's own memory: its version alone is new.
    let stream_memory = changed("      MemorySize: 1769\n", "      MemorySize: 3008\n", "stream-memory.yaml");
    let after = versions(&transformed_file(&stream_memory, &[]));
    assert_ne!(after["StreamFunction"], before["StreamFunction"]);
    assert_eq!(after["ApiFunction"], before["ApiFunction"]);
    // acidizer-ws's timeout alone: its version alone is new.
    let timeout = changed("      Timeout: 10\n", "      Timeout: 12\n", "timeout.yaml");
    let after = versions(&transformed_file(&timeout, &[]));
    assert_ne!(after["WsFunction"], before["WsFunction"]);
    assert_eq!(after["ApiFunction"], before["ApiFunction"]);
    assert_eq!(after["StreamFunction"], before["StreamFunction"]);

    // With a digest, the digest alone names the versions (SAM's own hash is set aside): deploy.yml's must see
    // every configuration (the built template) and every parameter value it deploys with.
    let digested = versions(&transformed(&["FunctionsDigest=0123456789abcdef"]));
    let redigested = versions(&transformed_file(&memory, &["FunctionsDigest=0123456789abcdef"]));
    assert_eq!(digested, redigested, "the digest alone names the versions");
    let digest = deploy_run("A digest");
    assert!(digest.contains("target/sam-arm64/template.yaml"), "the digest covers the template: {digest}");
    assert!(digest.contains("target/sam-arm64/*/bootstrap"), "the digest covers the code: {digest}");
    // Every other parameter the deploy passes is a line of target/stage-parameters.txt, which the digest covers
    // (tests/tests/deploy_workflow.rs runs both steps).
    assert!(digest.contains("target/stage-parameters.txt"), "the digest covers the parameters: {digest}");
    let deploy = deploy_run("sam deploy");
    assert!(deploy.contains("mapfile -t parameters < target/stage-parameters.txt"), "{deploy}");
    let overrides =
        "--parameter-overrides \"${parameters[@]}\" \"FunctionsDigest=${DIGEST}\" \"TableDeletionProtection=$1\"";
    assert!(deploy.contains(overrides), "the deploy passes those lines and nothing else: {deploy}");
}

/// The smoke test runs inside the deployment: each function's alias moves only through CodeDeploy, whose PreTraffic
/// hook invokes the version the deployment moves it to (and the other functions as they serve) before any traffic
/// reaches it. A failure rolls the deployment
/// back within the stack update, so nothing outside CloudFormation moves an alias (deploy.yml has no alias to move,
/// and its role could not). The smoke checks change the one counter `smoke`, which every stage admits.
#[test]
fn the_smoke_test_runs_inside_the_deployment() {
    let template = transformed(&["CounterNames=global,team"]);
    let hook = resource(&template, "SmokeHookFunction");
    let name = text_json(&hook["Properties"]["FunctionName"]["Fn::Sub"]);
    assert!(name.starts_with("CodeDeployHook_acidizer-${StageName}-"), "CodeDeploy's role invokes only these: {name}");
    let variables = &hook["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["SMOKE_COUNTER"], "smoke");
    for (function, variable) in
        [("ApiFunction", "API_FUNCTION"), ("WsFunction", "WS_FUNCTION"), ("StreamFunction", "STREAM_FUNCTION")]
    {
        let alias = resource(&template, &format!("{function}Aliaslive"));
        let policy = &alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"];
        assert_eq!(policy["BeforeAllowTrafficHook"], serde_json::json!({"Ref": "SmokeHookFunction"}), "{function}");
        // By name: which function a deployment moves, and to which version, the hook asks CodeDeploy
        // (tests/tests/smoke_hook.rs); references would close a loop through the site's origin
        // (the_transformed_template_has_no_error_and_no_cycle).
        let name = &resource(&template, function)["Properties"]["FunctionName"];
        assert_eq!(&variables[variable], name, "the hook knows {function} by its name");
        assert_eq!(alias["Properties"]["Name"], "live", "the others are tested as they serve: {function}:live");
        let group = resource(&template, &format!("{function}DeploymentGroup"));
        let role = serde_json::json!({"Fn::GetAtt": ["CodeDeployRole", "Arn"]});
        assert_eq!(group["Properties"]["ServiceRoleArn"], role, "{function}");
    }
    // The hook may invoke the stage's function versions and report to CodeDeploy; CodeDeploy may run the hook.
    let hook_role = resource(&template, "SmokeHookFunctionRole");
    let granted: Vec<String> = statements(hook_role).iter().flat_map(actions).collect();
    assert!(granted.contains(&"lambda:InvokeFunction".to_owned()), "{granted:?}");
    for action in [
        "codedeploy:ListDeploymentTargets",
        "codedeploy:GetDeploymentTarget",
        "codedeploy:PutLifecycleEventHookExecutionStatus",
    ] {
        assert!(granted.contains(&action.to_owned()), "{action}: {granted:?}");
    }
    let codedeploy = statements(resource(&template, "CodeDeployRole"));
    let runs_hook = codedeploy.iter().any(|s| {
        actions(s).contains(&"lambda:InvokeFunction".to_owned())
            && s["Resource"] == serde_json::json!({"Fn::GetAtt": ["SmokeHookFunction", "Arn"]})
    });
    assert!(runs_hook, "CodeDeploy's role runs the hook: {codedeploy:?}");
    // The counters a stage admits always include the smoke counter.
    let default = transformed(&[]);
    for function in ["ApiFunction", "WsFunction"] {
        let names = &resource(&template, function)["Properties"]["Environment"]["Variables"]["COUNTER_NAMES"];
        assert_eq!(names, &serde_json::json!({"Fn::Sub": "${CounterNames},smoke"}), "{function}");
        let any = &resource(&default, function)["Properties"]["Environment"]["Variables"]["COUNTER_NAMES"];
        assert_eq!(any, "", "{function}: an empty list admits any name");
    }

    let workflow = read(".github/workflows/deploy.yml");
    for outside in ["update-alias", "get-alias"] {
        assert!(!workflow.contains(outside), "deploy.yml moves no alias itself ({outside})");
    }
    let roles = cloudformation("infra/github-oidc.yaml");
    for statement in statements(&roles["Resources"]["DeployRole"]) {
        for action in actions(&statement) {
            assert!(!action.starts_with("lambda:"), "the deploy role touches no function: {action}");
        }
    }
    let smoke = read("tests/smoke.sh");
    assert!(smoke.contains("counter=\"${SMOKE_COUNTER:-smoke}\""), "tests/smoke.sh changes one counter, every run");
    assert!(!smoke.contains("$RANDOM") && !smoke.contains("date +%s"), "no counter per run");
}

/// The pipeline's least privilege. Every role the stack makes has the stage's permissions boundary, and the
/// CloudFormation role can make roles and write or attach their policies only with it (and never take it off);
/// it passes roles only to Lambda and CodeDeploy; no service is granted whole on every resource. The boundary
/// allows every action the stack's roles ask for (or the functions would fail). The deploy role trusts deploy.yml
/// run from main in the environment production, by the exact subject.
#[test]
fn the_pipeline_has_least_privilege() {
    let boundary_arn = serde_json::json!({"Fn::Sub":
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/boundary-acidizer-${StageName}"});
    let template = transformed(&[]);
    let roles_of_stack: Vec<(&String, &serde_json::Value)> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        // The capacity provider's operator role exists on ManagedInstances alone, which these roles do not deploy.
        .filter(|(_, r)| r["Type"] == "AWS::IAM::Role" && r["Condition"] != "ManagedInstances")
        .collect();
    assert!(roles_of_stack.len() >= 5, "the functions', the hook's and CodeDeploy's roles: {}", roles_of_stack.len());
    let roles = cloudformation("infra/github-oidc.yaml");
    let resources = &roles["Resources"];
    assert_eq!(
        text_json(&resources["StageBoundary"]["Properties"]["ManagedPolicyName"]["Fn::Sub"]),
        "boundary-acidizer-${StageName}"
    );
    let boundary: Vec<serde_json::Value> =
        resources["StageBoundary"]["Properties"]["PolicyDocument"]["Statement"].as_array().unwrap().clone();
    let bounded: Vec<String> = boundary.iter().flat_map(actions).collect();
    for (id, role) in &roles_of_stack {
        assert_eq!(role["Properties"]["PermissionsBoundary"], boundary_arn, "{id} is made under the boundary");
        for action in statements(role).iter().flat_map(actions) {
            assert!(bounded.iter().any(|b| matches(b, &action)), "{id} asks for {action}, which the boundary denies");
        }
    }
    // The managed policies SAM attaches: what they grant that the functions use is in the boundary.
    for action in ["logs:PutLogEvents", "xray:PutTraceSegments", "dynamodb:GetRecords", "dynamodb:ListStreams"] {
        assert!(bounded.iter().any(|b| matches(b, action)), "the boundary allows {action}");
    }

    let cloudformation_role = statements(&resources["CloudFormationRole"]);
    let boundary_ref = serde_json::json!({"Ref": "StageBoundary"});
    for statement in &cloudformation_role {
        let granted = actions(statement);
        for action in &granted {
            let gated_actions = [
                "iam:CreateRole",
                "iam:PutRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:PutRolePermissionsBoundary",
            ];
            for gated in gated_actions {
                if matches(action, gated) && statement["Effect"] == "Allow" {
                    let condition = &statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"];
                    assert_eq!(condition, &boundary_ref, "{gated} only under the boundary: {statement}");
                }
            }
            for never in ["iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"]
            {
                assert!(!matches(action, never), "{action} would let the stack widen its roles");
            }
            if matches(action, "iam:PassRole") && statement["Effect"] == "Allow" {
                let services = &statement["Condition"]["StringEquals"]["iam:PassedToService"];
                let expected = serde_json::json!(["lambda.amazonaws.com", "codedeploy.amazonaws.com"]);
                assert_eq!(services, &expected, "roles go to Lambda and CodeDeploy only: {statement}");
            }
            let on_everything = listed(&statement["Resource"]).contains(&serde_json::json!("*"));
            assert!(!(on_everything && action.ends_with(":*")), "{action} on every resource: {statement}");
            let mapping_change = ["Create", "Update", "Delete"]
                .iter()
                .any(|verb| matches(action, &format!("lambda:{verb}EventSourceMapping")));
            // On mappings (ids generated: "*" or an event-source-mapping ARN), not on the functions themselves.
            let on_mappings = on_everything || statement["Resource"].to_string().contains("event-source-mapping");
            if mapping_change && on_mappings {
                let function = &statement["Condition"]["ArnLike"]["lambda:FunctionArn"]["Fn::Sub"];
                assert!(
                    function.as_str().is_some_and(|arn| arn.ends_with(":function:acidizer-${StageName}-*")),
                    "{action} for the stage's functions only: {statement}"
                );
            }
        }
    }
    // The operator role of a Managed Instances stage is made outside the boundary: it is never passed.
    let operator_roles =
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/acidizer-${StageName}-*OperatorRole*".to_owned();
    let denied: Vec<String> = cloudformation_role
        .iter()
        .filter(|s| s["Effect"] == "Deny" && text_json(&s["Resource"]["Fn::Sub"]) == operator_roles)
        .flat_map(actions)
        .collect();
    // Nothing the role may do to the stage's roles reaches an operator role: not passing it, not its trust, not its
    // policies.
    let on_stage_roles: Vec<String> = cloudformation_role
        .iter()
        .filter(|s| s["Effect"] == "Allow" && s["Resource"].to_string().contains(":role/acidizer-${StageName}-*"))
        .flat_map(actions)
        .filter(|a| !a.starts_with("iam:Get") && !a.starts_with("iam:List"))
        .collect();
    assert!(on_stage_roles.len() >= 10, "{on_stage_roles:?}");
    for action in on_stage_roles {
        assert!(denied.contains(&action), "{action} is denied on the stage's operator roles: {denied:?}");
    }
    // SAM's artifact bucket is the account's: each stage uploads, and reads back, only under its own prefix; its
    // CloudFormation role reads code there and at the root (named after its MD5), for a rollback to a deployment
    // made before the prefix — not another stage's.
    let code = statements(&resources["CloudFormationRole"])
        .into_iter()
        .find(|s| s["Sid"] == "FunctionCode")
        .expect("a statement FunctionCode");
    let readable: Vec<String> = listed(&code["Resource"]).iter().map(|r| text_json(&r["Fn::Sub"])).collect();
    let bucket = "arn:${AWS::Partition}:s3:::aws-sam-cli-managed-default-*";
    assert_eq!(readable, [format!("{bucket}/acidizer-${{StageName}}/*"), format!("{bucket}/{}", "?".repeat(32))]);
    for statement in statements(&resources["DeployRole"]) {
        if statement["Resource"].to_string().contains("aws-sam-cli-managed-default-*/") {
            let resource = text_json(&statement["Resource"]["Fn::Sub"]);
            assert!(resource.ends_with("aws-sam-cli-managed-default-*/acidizer-${StageName}/*"), "{resource}");
        }
    }
    let samconfig = read("samconfig.toml");
    assert!(
        samconfig.contains("stack_name = \"acidizer-prod\"") && samconfig.contains("s3_prefix = \"acidizer-prod\"")
    );
    let deploy_role = &resources["DeployRole"];
    let trust = &deploy_role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    let subject = &trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"];
    let expected = "repo:${GitHubRepository}:environment:${GitHubEnvironment}:job_workflow_ref:\
                    ${GitHubRepository}/.github/workflows/deploy.yml@refs/heads/${GitHubBranch}";
    assert_eq!(subject, &serde_json::json!({"Fn::Sub": expected}), "{trust}");
    assert_eq!(trust["Condition"].as_object().unwrap().len(), 1, "exact values only (StringEquals): {trust}");
    assert_eq!(roles["Parameters"]["GitHubEnvironment"]["Default"], "production");
    assert_eq!(roles["Parameters"]["GitHubBranch"]["Default"], "main");
    assert_eq!(deploy_job()["environment"], "production", "deploy.yml's job runs in the environment the role trusts");
    for statement in statements(deploy_role) {
        if actions(&statement).contains(&"iam:PassRole".to_owned()) {
            assert_eq!(statement["Condition"]["StringEquals"]["iam:PassedToService"], "cloudformation.amazonaws.com");
        }
    }
}

/// What CloudFormation's handler of each kind of resource in the stack asks for (create, update, delete: the
/// resource schemas cfn-lint carries), the CloudFormation role grants, save what the stack's resources cannot need,
/// each with its reason. A permission missing here fails only on AWS, in the middle of a deployment.
#[test]
fn the_cloudformation_role_may_make_every_resource_of_the_stack() {
    const NOT_NEEDED: &[(&str, &str)] = &[
        ("apigateway:TagResource", "API Gateway authorizes tagging as PUT and DELETE on /tags/*"),
        ("apigateway:UntagResource", "API Gateway authorizes tagging as PUT and DELETE on /tags/*"),
        ("billing:GetBillingViewData", "a budget of a billing view only"),
        ("cloudfront:CreateConnectionGroup", "multi-tenant distributions only"),
        ("cloudfront:GetConnectionGroup", "multi-tenant distributions only"),
        ("cloudfront:GetVpcOrigin", "VPC origins only"),
        ("cloudfront:UpdateDistributionWithStagingConfig", "continuous deployment only"),
        ("cloudfront:CreateDistributionWithTags", "authorized as CreateDistribution and TagResource"),
        ("payments:GetConnectedAccount", "Marketplace rule groups only; not an action IAM knows"),
        ("iam:CreateServiceLinkedRole", "table replicas and auto scaling only"),
        ("kinesis:*", "a table's Kinesis stream only"),
        ("kms:ListAliases", "a key named by its alias only"),
        ("kms:GenerateDataKey", "a customer-managed key only"),
        ("iam:DeleteRolePermissionsBoundary", "never: it would let the stack widen its roles"),
        ("ec2:*", "a function in a VPC only (Managed Instances, deployed by an administrator)"),
        ("elasticfilesystem:*", "file systems only"),
        ("s3files:*", "file systems only"),
        ("firehose:TagDeliveryStream", "log delivery to Firehose only"),
        ("s3tables:*", "S3 metadata tables only"),
        ("secretsmanager:ReplicateSecretToRegions", "secret replicas only"),
        ("secretsmanager:RemoveRegionsFromReplication", "secret replicas only"),
    ];
    let template = transformed(&[]);
    let mut kinds: Vec<String> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Condition"] != "ManagedInstances")
        .map(|r| text_json(&r["Type"]))
        .collect();
    kinds.sort();
    kinds.dedup();
    let script = "import json, os, sys, cfnlint\n\
                  root = os.path.join(os.path.dirname(cfnlint.__file__), 'data', 'schemas')\n\
                  names = json.load(open(os.path.join(root, 'providers', 'us-east-1.json')))\n\
                  out = {}\n\
                  for kind in sys.argv[1:]:\n    \
                  handlers = json.load(open(os.path.join(root, 'resources', names[kind] + '.json')))['handlers']\n    \
                  out[kind] = sorted({p for h in ('create', 'update', 'delete') for p in handlers.get(h, {}).get('permissions', [])})\n\
                  print(json.dumps(out))";
    let output =
        std::process::Command::new("python3").args(["-c", script]).args(&kinds).output().expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let asked: BTreeMap<String, Vec<String>> = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(asked.len() >= 20, "{kinds:?}");

    let roles = cloudformation("infra/github-oidc.yaml");
    let granted: Vec<String> = statements(&roles["Resources"]["CloudFormationRole"])
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(actions)
        .collect();
    let mut exempted = Vec::new();
    for (kind, permissions) in &asked {
        for permission in permissions {
            if granted.iter().any(|g| matches(g, permission)) {
                continue;
            }
            let reason = NOT_NEEDED.iter().find(|(pattern, _)| matches(pattern, permission));
            assert!(reason.is_some(), "{kind} asks for {permission}, which the CloudFormation role does not grant");
            exempted.extend(reason.map(|(pattern, _)| *pattern));
        }
    }
    for (pattern, reason) in NOT_NEEDED {
        assert!(exempted.contains(pattern), "{pattern} ({reason}) is no longer asked for: take it off the list");
    }
}

/// What one client can cost everyone, bounded: reserved concurrency on every function (the ceiling of what a
/// flood takes of the account and the bill), a cap on subscribers per counter and the counters that exist (for the
/// functions to enforce), a monthly budget that writes to the alarm topic, and a loud warning when no one reads it.
#[test]
fn what_one_client_can_cost_is_bounded() {
    let template = transformed(&[]);
    for (function, parameter) in [
        ("ApiFunction", "ApiReservedConcurrency"),
        ("WsFunction", "WsReservedConcurrency"),
        ("StreamFunction", "StreamReservedConcurrency"),
    ] {
        let properties = &resource(&template, function)["Properties"];
        assert_eq!(properties["ReservedConcurrentExecutions"], serde_json::json!({"Ref": parameter}), "{function}");
        let declared = &template["Parameters"][parameter];
        assert!(declared["MinValue"].as_u64() >= Some(1), "{parameter} reserves something: {declared}");
    }
    assert!(resource(&template, "SmokeHookFunction")["Properties"]["ReservedConcurrentExecutions"].is_number());
    let ws = &resource(&template, "WsFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(ws["MAX_SUBSCRIBERS_PER_COUNTER"], serde_json::json!({"Ref": "MaxSubscribersPerCounter"}));
    assert!(template["Parameters"]["MaxSubscribersPerCounter"]["MinValue"].as_u64() >= Some(1));
    // No one client takes a counter's places: its connections are capped well under them.
    assert_eq!(ws["MAX_CONNECTIONS_PER_CLIENT"], serde_json::json!({"Ref": "MaxConnectionsPerClient"}));
    let default = |parameter: &str| template["Parameters"][parameter]["Default"].as_u64().expect("a default");
    assert!(default("MaxConnectionsPerClient") * 10 <= default("MaxSubscribersPerCounter"));
    let names = text_json(&template["Parameters"]["CounterNames"]["AllowedPattern"]);
    assert!(names.contains("[a-z0-9][a-z0-9_-]{0,63}"), "a list of valid counter names: {names}");

    let budget = resource(&template, "Budget");
    assert_eq!(budget["Type"], "AWS::Budgets::Budget");
    let limit = &budget["Properties"]["Budget"]["BudgetLimit"];
    assert_eq!(limit["Amount"], serde_json::json!({"Ref": "MonthlyBudget"}));
    let notifications = budget["Properties"]["NotificationsWithSubscribers"].as_array().unwrap();
    assert!(notifications.len() >= 2, "{notifications:?}");
    for notification in notifications {
        let subscriber = &notification["Subscribers"][0];
        assert_eq!(
            (&subscriber["SubscriptionType"], &subscriber["Address"]),
            (&"SNS".into(), &serde_json::json!({"Ref": "AlarmTopic"}))
        );
    }
    let topic_policy = resource(&template, "AlarmTopicPolicy").to_string();
    assert!(topic_policy.contains("budgets.amazonaws.com"), "Budgets may publish to the topic: {topic_policy}");

    // No alarm email: the stack says so in its outputs, and deploy.yml warns on every run.
    assert_eq!(template["Outputs"]["AlarmEmailMissing"]["Condition"], "NoAlarmEmail");
    assert_eq!(template["Conditions"]["NoAlarmEmail"], serde_json::json!({"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}));
    let job = deploy_job();
    let warning = job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["if"].as_str() == Some("env.ALARM_EMAIL == ''"))
        .expect("a step for an empty ALARM_EMAIL")
        .clone();
    let run = text(&warning["run"]);
    assert!(run.contains("::warning") && run.contains("GITHUB_STEP_SUMMARY"), "{run}");
}

/// The live broadcast at scale: acidizer-stream reads a counter's newest state and keeps its broadcast's progress
/// in the connections table, bounds its posts in flight, and an alarm tells of sustained throttling (over 10 % of
/// the posts for five minutes running), by metric math over the function's own metrics.
#[test]
fn the_broadcast_reads_its_state_and_alarms_on_sustained_throttling() {
    let template = transformed(&[]);
    let function = resource(&template, "StreamFunction");
    let variables = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["COUNTER_TABLE"], serde_json::json!({"Ref": "CounterTable"}));
    assert_eq!(variables["MAX_POSTS_IN_FLIGHT"], serde_json::json!({"Ref": "StreamMaxPostsInFlight"}));
    let limit = &template["Parameters"]["StreamMaxPostsInFlight"];
    assert_eq!((&limit["Default"], &limit["MinValue"], &limit["MaxValue"]), (&500.into(), &1.into(), &5000.into()));
    assert_eq!(function["Properties"]["MemorySize"], 1769, "a whole vCPU: a broadcast is CPU-bound on one thread");
    let granted = statements(resource(&template, "StreamFunctionRole"));
    let allows = |action: &str, table: &str| {
        granted.iter().any(|s| {
            actions(s).iter().any(|a| a == action) && s["Resource"] == serde_json::json!({"Fn::GetAtt": [table, "Arn"]})
        })
    };
    assert!(allows("dynamodb:GetItem", "CounterTable"), "{granted:?}");
    for action in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"] {
        assert!(allows(action, "ConnectionsTable"), "{action} on the connections table: {granted:?}");
    }

    let alarm = &resource(&template, "StreamThrottlingAlarm")["Properties"];
    let metrics = alarm["Metrics"].as_array().expect("metric math");
    let named = |name: &str| {
        metrics
            .iter()
            .find(|m| m["MetricStat"]["Metric"]["MetricName"] == name)
            .unwrap_or_else(|| panic!("the alarm reads {name}"))
    };
    for name in [acidizer_core::telemetry::POSTS_THROTTLED, acidizer_core::telemetry::SUBSCRIBERS_REACHED] {
        let metric = named(name);
        assert_eq!(metric["MetricStat"]["Metric"]["Dimensions"][0]["Value"], "acidizer-stream");
        assert_eq!((&metric["MetricStat"]["Period"], &metric["MetricStat"]["Stat"]), (&60.into(), &"Sum".into()));
    }
    let expression = metrics.iter().find(|m| m["ReturnData"] == true).expect("one expression answers");
    let (throttled, reached) =
        (text_json(&named("PostsThrottled")["Id"]), text_json(&named("SubscribersReached")["Id"]));
    let formula = text_json(&expression["Expression"]);
    assert!(formula.contains(&throttled) && formula.contains(&reached), "{formula}");
    assert_eq!((&alarm["Threshold"], &alarm["ComparisonOperator"]), (&10.into(), &"GreaterThanThreshold".into()));
    assert_eq!((&alarm["EvaluationPeriods"], &alarm["DatapointsToAlarm"]), (&5.into(), &5.into()));
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
}

/// The page's security headers: CloudFront adds a Content-Security-Policy that the built page can live with (its
/// scripts are files of the site, none inline; it calls the HTTP API on its own address and the WebSocket API in the
/// Region), HSTS, nosniff and no framing, to every answer of the site.
#[test]
fn the_page_has_security_headers() {
    let template = transformed(&[]);
    let behavior = &resource(&template, "SiteDistribution")["Properties"]["DistributionConfig"]["DefaultCacheBehavior"];
    assert_eq!(behavior["ResponseHeadersPolicyId"], serde_json::json!({"Ref": "SiteHeadersPolicy"}));
    let headers = &resource(&template, "SiteHeadersPolicy")["Properties"]["ResponseHeadersPolicyConfig"];
    let security = &headers["SecurityHeadersConfig"];
    let policy = text_json(&security["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self' wss://*.execute-api.${AWS::Region}.amazonaws.com;",
    ] {
        assert!(policy.contains(directive), "the CSP has {directive}: {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    let hsts = &security["StrictTransportSecurity"];
    assert!(hsts["AccessControlMaxAgeSec"].as_u64() >= Some(31_536_000), "{hsts}");
    assert_eq!(security["FrameOptions"]["FrameOption"], "DENY");
    assert_eq!(security["ContentTypeOptions"]["Override"], true);
    // The page the CSP must admit: no inline script, no style element.
    let page = read("frontend/index.html");
    for script in page.split("<script").skip(1) {
        assert!(script.split('>').next().unwrap().contains("src="), "an inline script: {script}");
    }
    assert!(!page.contains("<style"), "an inline style element");
}

/// Each function's role allows the DynamoDB calls its code makes, on the tables and index it makes them on: a call
/// the role lacks fails only on AWS (DynamoDB Local checks no permission), where `$connect` would answer 503.
#[test]
fn the_functions_may_make_the_dynamodb_calls_their_code_makes() {
    let template = transformed(&[]);
    let index = serde_json::json!({"Fn::Sub": "${ConnectionsTable.Arn}/index/byCounter"});
    let clients = serde_json::json!({"Fn::Sub": "${ConnectionsTable.Arn}/index/byClient"});
    let table = |name: &str| serde_json::json!({"Fn::GetAtt": [name, "Arn"]});
    let calls: [(&str, &[(&str, serde_json::Value)]); 2] = [
        (
            // acidizer-ws: subscribe, look up, forget (the table); count a counter's subscribers and a client's
            // connections (the indexes, at $connect with MAX_SUBSCRIBERS_PER_COUNTER, MAX_CONNECTIONS_PER_CLIENT);
            // read a counter (sync).
            "WsFunctionRole",
            &[
                ("dynamodb:PutItem", table("ConnectionsTable")),
                ("dynamodb:GetItem", table("ConnectionsTable")),
                ("dynamodb:DeleteItem", table("ConnectionsTable")),
                ("dynamodb:Query", index.clone()),
                ("dynamodb:Query", clients),
                ("dynamodb:GetItem", table("CounterTable")),
            ],
        ),
        (
            // acidizer-stream: list subscribers (the index), forget the gone and keep its progress (the table),
            // read a counter's newest state.
            "StreamFunctionRole",
            &[
                ("dynamodb:Query", index.clone()),
                ("dynamodb:GetItem", table("ConnectionsTable")),
                ("dynamodb:PutItem", table("ConnectionsTable")),
                ("dynamodb:DeleteItem", table("ConnectionsTable")),
                ("dynamodb:GetItem", table("CounterTable")),
            ],
        ),
    ];
    for (role, needed) in calls {
        let granted = statements(resource(&template, role));
        for (action, on) in needed {
            let allowed = granted.iter().any(|s| {
                s["Effect"] == "Allow"
                    && actions(s).iter().any(|a| matches(a, action))
                    && listed(&s["Resource"]).contains(on)
            });
            assert!(allowed, "{role} may {action} on {on}: {granted:?}");
        }
    }
}
