//! `acidizer serve`: the API, with the SPA, on one port; clean shutdown on SIGINT and SIGTERM.

use crate::cli::{ServeArgs, StoreKind};
use crate::live::heartbeat::Liveness;
use crate::live::hub::Hub;
use crate::live::limits::SessionLimits;
use crate::live::websocket::{self, Live};
use crate::live::{LocalBroadcaster, broadcast_commits, follow_stream};
use crate::{rate_limit, site};
use acidizer_core::{ALLOWED_ORIGINS_ENV, AllowedOrigins, InvalidOrigin};
use acidizer_core::{CounterStore, Counters};
use acidizer_http::guarded_router;
use acidizer_store_dynamodb::aws_sdk_dynamodb::Client;
use acidizer_store_dynamodb::{
    CONNECTIONS_TABLE_ENV, COUNTER_TABLE_ENV, CreateTablesError, DynamoStore, create_missing_tables,
    sdk_config_from_env,
};
use acidizer_store_sqlite::{OpenError, SqliteStore};
use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long WebSocket sessions get to close at shutdown.
const SESSIONS_CLOSE_WITHIN: Duration = Duration::from_secs(5);

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
    #[error("cannot listen on {addr}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the server failed")]
    Server(#[source] std::io::Error),
}

pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    ignore_file_size_signal();
    let origins = AllowedOrigins::parse(&std::env::var(ALLOWED_ORIGINS_ENV).unwrap_or_default())?;
    site::build_if_missing(&args.static_dir);
    let hub = Arc::new(Hub::default());
    let broadcaster: LocalBroadcaster = LocalBroadcaster::new(Arc::clone(&hub), Arc::clone(&hub));
    let shutdown = CancellationToken::new();
    match args.store {
        StoreKind::Sqlite => {
            let store = open_sqlite_live(&args.data_dir, broadcaster)?;
            tracing::info!(data_dir = %args.data_dir.display(), "store: sqlite");
            host(Counters::new(store).with_max(args.counter_max), hub, shutdown, &args, &origins).await
        }
        StoreKind::Dynamodb => {
            let table = std::env::var(COUNTER_TABLE_ENV).map_err(|_| ServeError::NoCounterTable)?;
            let config = sdk_config_from_env().await;
            let client = Client::new(&config);
            if args.create_tables {
                let connections = std::env::var(CONNECTIONS_TABLE_ENV).ok();
                create_missing_tables(&client, &table, connections.as_deref()).await?;
            }
            follow_stream::start(config, table.clone(), broadcaster, shutdown.clone()).await;
            tracing::info!(table, "store: dynamodb");
            let counters = Counters::new(DynamoStore::new(client, table)).with_max(args.counter_max);
            host(counters, hub, shutdown, &args, &origins).await
        }
    }
}

/// The embedded store in `data_dir`, whose commits are broadcast to the hub's subscribers.
pub fn open_sqlite_live(data_dir: &Path, broadcaster: LocalBroadcaster) -> Result<SqliteStore, OpenError> {
    let (changes, committed) = tokio::sync::mpsc::unbounded_channel();
    let store = SqliteStore::open_publishing(data_dir, Some(changes))?;
    tokio::spawn(broadcast_commits(broadcaster, committed));
    Ok(store)
}

/// The whole stack on one port: the API, `/ws`, `/config.json` and the SPA in `static_dir`, each request first
/// checked against `limits` if any; pages from `live.origins` may call it.
pub fn app<S: CounterStore>(live: &Live<S>, static_dir: PathBuf, limits: Option<rate_limit::PerIp>) -> Router {
    let pages = Router::new()
        .route("/ws", get(websocket::upgrade::<S>))
        .route("/config.json", get(site::config::<S>))
        .with_state(live.clone())
        .merge(Router::new().fallback(site::serve).with_state(site::Site::new(static_dir)));
    guarded_router(live.counters.clone(), &live.origins, pages, |routes| match limits {
        Some(limits) => routes.layer(axum::middleware::from_fn_with_state(limits, rate_limit::enforce)),
        None => routes,
    })
}

async fn host<S: CounterStore>(
    counters: Counters<S>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    args: &ServeArgs,
    origins: &AllowedOrigins,
) -> Result<(), ServeError> {
    let liveness = Liveness {
        ping_after: Duration::from_secs(args.ws_ping_after.get()),
        answer_within: Duration::from_secs(args.ws_answer_within.get()),
    };
    let max_sessions = sessions_the_open_files_allow(args.ws_max_sessions);
    let limits = SessionLimits::new(max_sessions, args.ws_max_per_client, args.ws_messages_per_second);
    let live = Live {
        counters,
        hub: Arc::clone(&hub),
        sessions: TaskTracker::new(),
        liveness,
        limits: Arc::new(limits),
        origins: origins.clone(),
    };
    let app = app(&live, args.static_dir.clone(), args.rate_limit.map(rate_limit::PerIp::new));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: args.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen { addr: args.listen, source })?;
    println!("acidizer listening on http://{addr}");
    // Answers and pushed values are small writes, each sent at once: Nagle's algorithm would hold one back while
    // the peer delays its acknowledgement of the last.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    let stopping = shutdown.clone();
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            stopping.cancel();
            // WebSocket sessions close with 1001 (going away), so clients reconnect at once.
            hub.close();
        })
        .await
        .map_err(ServeError::Server)?;
    live.sessions.close();
    if tokio::time::timeout(SESSIONS_CLOSE_WITHIN, live.sessions.wait()).await.is_err() {
        tracing::warn!("some WebSocket sessions did not close in time");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Descriptors kept for everything but WebSocket sessions (HTTP connections, the database, the logs): this many,
/// or half the open-file limit if that is less.
const DESCRIPTORS_KEPT: u64 = 1024;

/// Raises the open-file limit to its hard limit, and returns `wanted` sessions, or as many as it leaves room for
/// (each session is one descriptor) beside the descriptors kept, so that sessions never take those HTTP needs.
fn sessions_the_open_files_allow(wanted: NonZeroUsize) -> NonZeroUsize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct passed, which lives on this stack frame.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let room = usize::try_from(soft - DESCRIPTORS_KEPT.min(soft / 2)).unwrap_or(usize::MAX);
    match NonZeroUsize::new(room) {
        Some(room) if room < wanted => {
            tracing::warn!(wanted, room, "the open-file limit leaves room for fewer WebSocket sessions than asked");
            room
        }
        Some(_) => wanted,
        None => NonZeroUsize::MIN,
    }
}

/// A file-size limit (`ulimit -f`) reached by the database is a write error the store reports — changes answer
/// 503, `/health` too — not a signal that kills the server; service resumes when the limit is raised.
fn ignore_file_size_signal() {
    // SAFETY: sets a signal's disposition to "ignore" (no handler runs); signal(2) is safe to call from any thread.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
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
