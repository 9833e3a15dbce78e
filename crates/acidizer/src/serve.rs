//! `acidizer serve`: the API, with the SPA, on one port; clean shutdown on SIGINT and SIGTERM.

use crate::cli::{ServeArgs, StoreKind};
use crate::{rate_limit, site};
use acidizer_core::http::{AllowedOrigins, InvalidOrigin, router_with_fallback};
use acidizer_core::{CounterStore, Counters};
use acidizer_store_dynamodb::{COUNTER_TABLE_ENV, CreateTablesError, DynamoStore, create_missing_tables};
use acidizer_store_sqlite::{OpenError, SqliteStore};
use axum::Router;
use std::net::SocketAddr;

/// The connections table, created beside the counter table by `--create-tables` when set.
const CONNECTIONS_TABLE_ENV: &str = "CONNECTIONS_TABLE";

/// Why the server could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Origins(#[from] InvalidOrigin),
    #[error(transparent)]
    Sqlite(#[from] OpenError),
    #[error("--store dynamodb needs {COUNTER_TABLE_ENV} to name the counter table")]
    NoCounterTable,
    #[error(transparent)]
    CreateTables(#[from] CreateTablesError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the server failed: {0}")]
    Server(std::io::Error),
}

pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let origins = AllowedOrigins::parse(&std::env::var("ALLOWED_ORIGINS").unwrap_or_default())?;
    match args.store {
        StoreKind::Sqlite => {
            let store = SqliteStore::open(&args.data_dir)?;
            tracing::info!(data_dir = %args.data_dir.display(), "store: sqlite");
            host(Counters::new(store), &args, &origins).await
        }
        StoreKind::Dynamodb => {
            let table = std::env::var(COUNTER_TABLE_ENV).map_err(|_| ServeError::NoCounterTable)?;
            let client = DynamoStore::client_from_env().await;
            if args.create_tables {
                let connections = std::env::var(CONNECTIONS_TABLE_ENV).ok();
                create_missing_tables(&client, &table, connections.as_deref()).await?;
            }
            tracing::info!(table, "store: dynamodb");
            host(Counters::new(DynamoStore::new(client, table)), &args, &origins).await
        }
    }
}

async fn host<S: CounterStore>(
    counters: Counters<S>,
    args: &ServeArgs,
    origins: &AllowedOrigins,
) -> Result<(), ServeError> {
    let site = Router::new().fallback(site::serve).with_state(site::Site::new(args.static_dir.clone()));
    let mut app = router_with_fallback(counters, origins, site);
    if let Some(per_second) = args.rate_limit {
        app = app.layer(axum::middleware::from_fn_with_state(rate_limit::PerIp::new(per_second), rate_limit::enforce));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: args.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen { addr: args.listen, source })?;
    println!("acidizer listening on http://{addr}");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServeError::Server)?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
