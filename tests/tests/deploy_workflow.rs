//! The deploy job's own scripts (`.github/workflows/deploy.yml`), run as GitHub runs them (`bash -eo pipefail`)
//! with stand-ins for the `aws` and `sam` commands: a new stage is deployed twice, unprotected then protected; a
//! stack that a failed first deployment left stops the job; the digest that names the versions changes with the
//! template and with every parameter; the Region comes from samconfig.toml.

use acidizer_tests::binaries;
use acidizer_tests::deploy_job::deploy_run;
use serde_norway::Value;
use std::path::Path;

/// What a step did: whether it succeeded, what it wrote to `$GITHUB_OUTPUT`, its output, and the calls the stand-ins
/// recorded (one line each).
struct Ran {
    success: bool,
    outputs: String,
    printed: String,
    calls: Vec<String>,
}

/// Runs `script` in `dir` (the workspace), with `aws` and `sam` stand-ins that record their arguments and run
/// `aws_body`, `sam_body` (shell, "$@" their arguments).
fn run(script: &str, dir: &Path, env: &[(&str, &str)], aws_body: &str, sam_body: &str) -> Ran {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("calls");
    let _ = std::fs::remove_file(&calls);
    for (command, body) in [("aws", aws_body), ("sam", sam_body)] {
        let path = bin.join(command);
        let stand_in = format!("#!/usr/bin/env bash\necho \"{command} $*\" >> '{}'\n{body}\n", calls.display());
        std::fs::write(&path, stand_in).unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    }
    let outputs = dir.join("github-output");
    std::fs::write(&outputs, "").unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = std::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("GITHUB_OUTPUT", &outputs)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Ran {
        success: output.status.success(),
        outputs: std::fs::read_to_string(&outputs).unwrap(),
        printed: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        calls: std::fs::read_to_string(&calls).unwrap_or_default().lines().map(str::to_owned).collect(),
    }
}

/// What the step sees: the stage, and the region (samconfig.toml's, from the step that reads it).
const STAGE: [(&str, &str); 2] = [("STAGE_NAME", "prod"), ("REGION", "us-east-1")];

#[test]
fn a_new_stage_is_deployed_unprotected_then_protected() {
    let dir = tempfile::tempdir().unwrap();
    let first = deploy_run("Is this the stage's first deployment?");
    let missing =
        "echo 'An error occurred (ValidationError): Stack with id acidizer-prod does not exist' >&2; exit 254";
    let ran = run(&first, dir.path(), &STAGE, missing, "");
    assert!(ran.success, "{}", ran.printed);
    assert_eq!(ran.outputs, "value=true\n");
    let ran = run(&first, dir.path(), &STAGE, "echo UPDATE_COMPLETE", "");
    assert!(ran.success, "{}", ran.printed);
    assert_eq!(ran.outputs, "value=false\n");
    let ran = run(&first, dir.path(), &STAGE, "echo REVIEW_IN_PROGRESS", "");
    assert_eq!(ran.outputs, "value=true\n", "a change set never executed: still the first deployment");
    for left in ["ROLLBACK_COMPLETE", "ROLLBACK_FAILED"] {
        let ran = run(&first, dir.path(), &STAGE, &format!("echo {left}"), "");
        assert!(!ran.success, "{left}: the job stops");
        let delete = "aws cloudformation delete-stack --stack-name acidizer-prod --region us-east-1";
        assert!(ran.printed.contains(delete), "the stack's own region: {}", ran.printed);
    }
    let denied = "echo 'An error occurred (AccessDenied)' >&2; exit 254";
    assert!(!run(&first, dir.path(), &STAGE, denied, "").success, "any other error stops the job");

    let deploy = deploy_run("sam deploy");
    std::fs::create_dir_all(dir.path().join("target")).unwrap();
    let parameters = "StageName=\"prod\"\nCounterNames=\"a,b\"\nCompute=\"OnDemand\"\n";
    std::fs::write(dir.path().join("target/stage-parameters.txt"), parameters).unwrap();
    let env = |first: &'static str| {
        [("STAGE_NAME", "prod"), ("DIGEST", "0123456789abcdef"), ("REGION", "us-east-1"), ("FIRST", first)]
    };
    // The account, and (for a stage that exists) the Compute it runs on.
    let account = r#"case "$*" in *Compute*) echo OnDemand ;; *) echo 123456789012 ;; esac"#;
    let protection = |calls: &[String]| -> Vec<String> {
        calls
            .iter()
            .filter(|c| c.starts_with("sam deploy"))
            .map(|c| c.split_whitespace().find(|w| w.starts_with("TableDeletionProtection=")).unwrap().to_owned())
            .collect()
    };
    let ran = run(&deploy, dir.path(), &env("true"), account, "");
    assert!(ran.success, "{}", ran.printed);
    let expected = ["TableDeletionProtection=false", "TableDeletionProtection=true"];
    assert_eq!(protection(&ran.calls), expected, "a new stage: unprotected, then protected");
    for call in ran.calls.iter().filter(|c| c.starts_with("sam deploy")) {
        assert!(call.contains("--region us-east-1") && call.contains("FunctionsDigest=0123456789abcdef"), "{call}");
        assert!(call.contains("--s3-prefix acidizer-prod "), "the stage's own prefix of SAM's bucket: {call}");
        assert!(call.contains("--role-arn arn:aws:iam::123456789012:role/cloudformation-acidizer-prod"), "{call}");
        let overrides =
            "--parameter-overrides StageName=\"prod\" CounterNames=\"a,b\" Compute=\"OnDemand\" FunctionsDigest=";
        assert!(call.contains(overrides), "{call}");
    }
    let ran = run(&deploy, dir.path(), &env("false"), account, "");
    assert_eq!(protection(&ran.calls), ["TableDeletionProtection=true"], "an existing stage stays protected");
    // A Managed Instances stage is an administrator's: this job deploys neither to one nor into one.
    let managed = r#"case "$*" in *Compute*) echo ManagedInstances ;; *) echo 123456789012 ;; esac"#;
    let ran = run(&deploy, dir.path(), &env("false"), managed, "");
    assert!(!ran.success && ran.printed.contains("::error title=Compute::"), "{}", ran.printed);
    assert!(ran.calls.iter().all(|c| !c.starts_with("sam deploy")), "{:?}", ran.calls);
    let asks_for_it = parameters.replace("OnDemand", "ManagedInstances");
    std::fs::write(dir.path().join("target/stage-parameters.txt"), &asks_for_it).unwrap();
    let ran = run(&deploy, dir.path(), &env("true"), account, "");
    assert!(!ran.success && ran.calls.iter().all(|c| !c.starts_with("sam deploy")), "{}", ran.printed);
    std::fs::write(dir.path().join("target/stage-parameters.txt"), parameters).unwrap();
    // A first deployment that fails is not followed by the protected one.
    let fails_unprotected = r#"case "$*" in *TableDeletionProtection=false*) exit 1 ;; esac"#;
    let ran = run(&deploy, dir.path(), &env("true"), account, fails_unprotected);
    assert!(!ran.success);
    assert_eq!(protection(&ran.calls), ["TableDeletionProtection=false"]);
}

/// A workspace as the deploy job has it: the built template (here the source, whose parameters it keeps), the
/// parameters' script, and `python` (setup-python's; python3 here).
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = binaries::repo_root();
    std::fs::create_dir_all(dir.path().join("target/sam-arm64")).unwrap();
    std::fs::create_dir_all(dir.path().join("infra")).unwrap();
    std::fs::copy(root.join("infra/template.yaml"), dir.path().join("target/sam-arm64/template.yaml")).unwrap();
    std::fs::copy(root.join("infra/stage-parameters.py"), dir.path().join("infra/stage-parameters.py")).unwrap();
    std::os::unix::fs::symlink(which("python3"), dir.path().join("python")).unwrap();
    dir
}

/// The stage's parameters as the job's step writes them, with the environment's variables `env`.
fn stage_parameters(dir: &Path, env: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut env = env.to_vec();
    env.push(("PATH", path.as_str()));
    let ran = run(&deploy_run("The stage's parameters"), dir, &env, "", "");
    if !ran.success {
        return Err(ran.printed);
    }
    Ok(std::fs::read_to_string(dir.join("target/stage-parameters.txt")).unwrap().lines().map(str::to_owned).collect())
}

/// Every parameter of the template is passed: the variables' values, any of STAGE_PARAMETERS, the template's
/// default for the rest — never a value an earlier deployment left (sam deploy keeps a parameter it is not given).
/// The deploy itself sets FunctionsDigest and TableDeletionProtection; an unknown name stops the job.
#[test]
fn every_parameter_is_passed_and_none_is_kept_from_before() {
    let dir = workspace();
    let variables = [
        ("STAGE_NAME", "prod"),
        ("ALLOWED_ORIGINS", ""),
        ("COUNTER_MAX", "5"),
        ("COUNTER_NAMES", "global,team"),
        ("ALARM_EMAIL", "ops@example.com"),
        // One Name=Value a line, or several on one.
        ("STAGE_PARAMETERS", "ClientChangesPerMinute=60\nMaxSubscribersPerCounter=5000 LogRetentionDays=7\n"),
    ];
    let lines = stage_parameters(dir.path(), &variables).expect("the parameters");
    let template: Value =
        serde_norway::from_str(&std::fs::read_to_string(binaries::repo_root().join("infra/template.yaml")).unwrap())
            .unwrap();
    let declared: Vec<String> =
        template["Parameters"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()).collect();
    let named: Vec<String> = lines.iter().map(|line| line.split('=').next().unwrap().to_owned()).collect();
    let expected: Vec<String> = declared
        .iter()
        .filter(|name| !["FunctionsDigest", "TableDeletionProtection"].contains(&name.as_str()))
        .cloned()
        .collect();
    assert_eq!(named, expected, "every parameter, once");
    for line in [
        "StageName=\"prod\"",
        "AllowedOrigins=\"\"",
        "CounterMax=\"5\"",
        "CounterNames=\"global,team\"",
        "AlarmEmail=\"ops@example.com\"",
        "Architecture=\"arm64\"",
        "ClientChangesPerMinute=\"60\"",
        "MaxSubscribersPerCounter=\"5000\"",
        "LogRetentionDays=\"7\"",
        "Compute=\"OnDemand\"",
        "ClientRequestsPerMinute=\"600\"",
        "ThrottleRate=\"200\"",
    ] {
        assert!(lines.contains(&line.to_owned()), "{line} in {lines:?}");
    }
    for wrong in ["NoSuchParameter=1", "FunctionsDigest=0123456789abcdef", "CounterMax=7", "ThrottleRate=1\\2"] {
        let mut env = variables.to_vec();
        env.push(("STAGE_PARAMETERS", wrong));
        let refused = stage_parameters(dir.path(), &env).expect_err(wrong);
        assert!(refused.contains("stage-parameters:"), "{wrong}: {refused}");
    }
}

#[test]
fn the_digest_changes_with_the_template_and_every_parameter() {
    let dir = workspace();
    let build = dir.path().join("target/sam-arm64");
    for function in ["ApiFunction", "WsFunction", "StreamFunction"] {
        std::fs::create_dir_all(build.join(function)).unwrap();
        std::fs::write(build.join(function).join("bootstrap"), function).unwrap();
    }
    let template = std::fs::read_to_string(build.join("template.yaml")).unwrap();
    let script = deploy_run("A digest");
    let variables = ["STAGE_NAME", "ALLOWED_ORIGINS", "COUNTER_MAX", "COUNTER_NAMES", "ALARM_EMAIL"];
    let digest = |template: &str, changed: Option<(&str, &str)>| {
        std::fs::write(build.join("template.yaml"), template).unwrap();
        let mut env: Vec<(&str, &str)> = variables.iter().map(|name| (*name, "")).collect();
        env.push(("STAGE_PARAMETERS", ""));
        if let Some(change) = changed {
            env.retain(|(name, _)| *name != change.0);
            env.push(change);
        }
        stage_parameters(dir.path(), &env).expect("the parameters");
        let ran = run(&script, dir.path(), &[], "", "");
        assert!(ran.success, "{}", ran.printed);
        let value = ran.outputs.trim().strip_prefix("value=").unwrap().to_owned();
        assert_eq!(value.len(), 16, "{value}");
        value
    };
    let base = digest(&template, None);
    assert_eq!(digest(&template, None), base, "the same build, the same digest");
    let larger = template.replacen("MemorySize: 256", "MemorySize: 512", 1);
    assert_ne!(digest(&larger, None), base, "a configuration change");
    for variable in variables {
        assert_ne!(digest(&template, Some((variable, "other"))), base, "{variable}");
    }
    let by_hand = Some(("STAGE_PARAMETERS", "MaxSubscribersPerCounter=5"));
    assert_ne!(digest(&template, by_hand), base, "a parameter the variables do not name");
    let default = template.replacen("Default: 10000\n", "Default: 20000\n", 1);
    assert_ne!(default, template);
    assert_ne!(digest(&default, None), base, "a parameter's default");
    std::fs::write(build.join("WsFunction/bootstrap"), "changed").unwrap();
    assert_ne!(digest(&template, None), base, "a code change");
}

#[test]
fn the_region_is_samconfig_tomls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(binaries::repo_root().join("samconfig.toml"), dir.path().join("samconfig.toml")).unwrap();
    // GitHub runs it with setup-python's `python`; here python3 stands for it.
    std::os::unix::fs::symlink(which("python3"), dir.path().join("python")).unwrap();
    let script = deploy_run("The Region");
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let ran = run(&script, dir.path(), &[("PATH", path.as_str())], "", "");
    assert!(ran.success, "{}", ran.printed);
    assert_eq!(ran.outputs, "value=us-east-1\n");
}

fn which(command: &str) -> std::path::PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{command} on PATH"))
}
