//! `acidizer-api`: the Lambda host of the HTTP API; see the library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    acidizer_api::run().await
}
