//! The deploy job of `.github/workflows/deploy.yml`, for the tests that read its steps.

use crate::binaries;
use serde_norway::Value;

/// The deploy job.
pub fn deploy_job() -> Value {
    let path = binaries::repo_root().join(".github/workflows/deploy.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let workflow: Value = serde_norway::from_str(&text).expect("deploy.yml is YAML");
    workflow["jobs"]["deploy"].clone()
}

/// The names of the deploy job's steps, in order.
pub fn step_names() -> Vec<String> {
    steps().iter().filter_map(|step| step["name"].as_str().map(str::to_owned)).collect()
}

/// The deploy job's step whose name starts with `name`.
pub fn deploy_step(name: &str) -> Value {
    steps()
        .into_iter()
        .find(|step| step["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("a step named {name}…"))
}

/// The `run` script of the deploy job's step whose name starts with `name`.
pub fn deploy_run(name: &str) -> String {
    deploy_step(name)["run"].as_str().unwrap_or_else(|| panic!("{name}… runs a script")).to_owned()
}

fn steps() -> Vec<Value> {
    deploy_job()["steps"].as_sequence().expect("the deploy job's steps").clone()
}
