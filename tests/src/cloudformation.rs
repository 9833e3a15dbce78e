//! `infra/template.yaml` as CloudFormation receives it, through its transforms, for the tests that read it.

use crate::binaries;

/// The template through its transforms, as CloudFormation deploys it (`tests/support/sam_transform.py`).
pub fn transformed(parameters: &[&str]) -> serde_json::Value {
    transformed_file(&binaries::repo_root().join("infra/template.yaml"), parameters)
}

/// The template at `path` through its transforms.
pub fn transformed_file(path: &std::path::Path, parameters: &[&str]) -> serde_json::Value {
    let root = binaries::repo_root();
    let output = std::process::Command::new("python3")
        .arg(root.join("tests/support/sam_transform.py"))
        .arg(path)
        .args(parameters)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the SAM transform failed:\n{stderr}");
    serde_json::from_slice(&output.stdout).expect("the transform prints JSON")
}

/// The resource `logical_id` of a transformed template, which must exist.
pub fn resource<'a>(template: &'a serde_json::Value, logical_id: &str) -> &'a serde_json::Value {
    let resource = &template["Resources"][logical_id];
    assert!(resource.is_object(), "{logical_id} exists");
    resource
}

/// A string of a template as JSON, which must be one.
pub fn text_json(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("a string, not {value}")).to_owned()
}
