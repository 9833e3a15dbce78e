//! `acidizer-api`: the Lambda host of the HTTP API (API Gateway HTTP API, payload format 2.0) on DynamoDB. The
//! binary is a shim over [`run`].
//!
//! Environment: `COUNTER_TABLE` (required), `ALLOWED_ORIGINS`, `COUNTER_MAX` and `COUNTER_NAMES` (optional: the
//! counters that exist besides `global`; any other answers 404), and the AWS SDK's standard variables.

pub mod http_event;
mod server_errors;
mod whole_bodies;

use acidizer_core::domain::{COUNTER_MAX_ENV, COUNTER_NAMES_ENV};
use acidizer_core::{ALLOWED_ORIGINS_ENV, AllowedOrigins, CounterMax, Counters, KnownCounters};
use acidizer_http::router;
use acidizer_lambda::{StartError, required_env};
use acidizer_store_dynamodb::aws_sdk_dynamodb::Client;
use acidizer_store_dynamodb::{COUNTER_TABLE_ENV, DynamoStore, lambda_sdk_config};

pub use server_errors::count_server_errors;

/// Runs the function: the router on DynamoDB, behind the mending of events lambda_http would panic on; on Lambda
/// Managed Instances, as many invocations at once as `AWS_LAMBDA_MAX_CONCURRENCY` says, on one store whose groups
/// they share.
pub async fn run() -> Result<(), lambda_http::Error> {
    let metrics = acidizer_lambda::init("acidizer-api")?;
    let table = required_env(COUNTER_TABLE_ENV)?;
    let origins = AllowedOrigins::parse(&std::env::var(ALLOWED_ORIGINS_ENV).unwrap_or_default())
        .map_err(|invalid| StartError::invalid(ALLOWED_ORIGINS_ENV, invalid))?;
    let max = CounterMax::from_env().map_err(|invalid| StartError::invalid(COUNTER_MAX_ENV, invalid))?;
    let known = KnownCounters::from_env().map_err(|invalid| StartError::invalid(COUNTER_NAMES_ENV, invalid))?;
    let client = Client::new(&lambda_sdk_config());
    let counters = Counters::new(DynamoStore::new(client, table)).with_max(max).with_known(known);
    let app = router(counters, &origins);
    let app = count_server_errors(app);
    let handler = http_event::Mended(lambda_http::Adapter::from(whole_bodies::whole_bodies(app)));
    acidizer_lambda::concurrent::run(metrics, handler).await
}
