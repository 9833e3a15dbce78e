//! Reading CloudWatch Embedded Metric Format documents out of a function's logs.

use serde_json::Value;
use std::collections::BTreeMap;

/// Every EMF document in `logs` (a JSON line with an `_aws.CloudWatchMetrics` directive).
pub fn documents(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["_aws"]["CloudWatchMetrics"].is_array())
        .collect()
}

/// The sum of each metric over all documents (a histogram's values summed as well).
pub fn totals(logs: &str) -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    for document in documents(logs) {
        for directive in document["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
            for metric in directive["Metrics"].as_array().into_iter().flatten() {
                let Some(name) = metric["Name"].as_str() else { continue };
                let value = match &document[name] {
                    Value::Array(values) => values.iter().filter_map(Value::as_f64).sum(),
                    other => other.as_f64().unwrap_or_default(),
                };
                *totals.entry(name.to_owned()).or_default() += value;
            }
        }
    }
    totals
}
