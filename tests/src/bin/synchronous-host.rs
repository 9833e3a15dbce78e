//! The HTTP API of `acidizer serve` over the embedded store opened at a chosen `Synchronous` level: what the
//! power-loss test runs to show that the durability promise rests on the store's fsync of the WAL before each
//! answer (`full`; `acidizer serve` always runs it and has no way to lower it). `normal` is SQLite's
//! `synchronous=NORMAL` without that fsync, `off` no fsync at all.
//!
//! Usage: `synchronous-host DATA_DIR off|normal|full`; prints `listening on http://ADDR` once it listens on a free
//! port of 127.0.0.1.

use acidizer_core::AllowedOrigins;
use acidizer_core::Counters;
use acidizer_http::router;
use acidizer_store_sqlite::{SqliteStore, Synchronous};
use std::net::SocketAddr;
use std::path::PathBuf;

#[tokio::main]
async fn main() {
    // The program's name, then its arguments.
    let args: Vec<String> = std::env::args().collect();
    let [_, data_dir, level] = args.as_slice() else {
        eprintln!("usage: synchronous-host DATA_DIR off|normal|full");
        std::process::exit(2);
    };
    let synchronous = match level.as_str() {
        "off" => Synchronous::Off,
        "normal" => Synchronous::Normal,
        "full" => Synchronous::Full,
        other => {
            eprintln!("synchronous-host: {other:?} is not off, normal or full");
            std::process::exit(2);
        }
    };
    let store = SqliteStore::open_with(&PathBuf::from(data_dir), synchronous).expect("the store opens");
    let app = router(Counters::new(store), &AllowedOrigins::None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    println!("listening on http://{}", listener.local_addr().expect("a bound address"));
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("the server runs");
}
