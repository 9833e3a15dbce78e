//! `acidizer-api`: the Lambda host of the HTTP API (API Gateway HTTP API, payload format 2.0) on DynamoDB.
//!
//! Environment: `COUNTER_TABLE` (required), `ALLOWED_ORIGINS` and `COUNTER_MAX` (optional), and the AWS SDK's
//! standard variables.

use acidizer_core::http::{ALLOWED_ORIGINS_ENV, AllowedOrigins, router};
use acidizer_core::{CounterMax, Counters};
use acidizer_store_dynamodb::aws_sdk_dynamodb::Client;
use acidizer_store_dynamodb::{COUNTER_TABLE_ENV, DynamoStore, lambda_sdk_config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let metrics = acidizer_lambda::init("acidizer-api")?;
    let table = std::env::var(COUNTER_TABLE_ENV).map_err(|_| format!("{COUNTER_TABLE_ENV} is not set"))?;
    let origins = AllowedOrigins::parse(&std::env::var(ALLOWED_ORIGINS_ENV).unwrap_or_default())?;
    let max = CounterMax::from_env().map_err(|invalid| invalid.to_string())?;
    let client = Client::new(&lambda_sdk_config());
    let app = router(Counters::new(DynamoStore::new(client, table)).with_max(max), &origins);
    let app = acidizer_lambda::count_server_errors(app);
    // Events lambda_http would panic on are mended first (acidizer_lambda::http_event).
    let handler = acidizer_lambda::http_event::Mended(lambda_http::Adapter::from(app));
    acidizer_lambda::service::run(metrics, handler).await
}
