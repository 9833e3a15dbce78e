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

/// The template through its transforms, as CloudFormation deploys it (`tests/support/sam_transform.py`).
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

/// The HTTP API's CORS configuration survives the transforms whole — origins, methods, headers, exposed headers
/// and max age — for the stack's own site, for any origin and for a list of them. (AWS::LanguageExtensions settles
/// the template's one condition over the whole configuration, and splits the list, before SAM reads it.)
#[test]
fn cors_survives_the_sam_transform() {
    let site = serde_json::json!([{"Fn::Sub": "https://${SiteDistribution.DomainName}"}]);
    let list = serde_json::json!(["https://a.example", "https://b.example"]);
    for (parameters, origins) in [
        (vec![], site),
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

/// The resource `logical_id` of a transformed template, which must exist.
fn resource<'a>(template: &'a serde_json::Value, logical_id: &str) -> &'a serde_json::Value {
    let resource = &template["Resources"][logical_id];
    assert!(resource.is_object(), "{logical_id} exists");
    resource
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
