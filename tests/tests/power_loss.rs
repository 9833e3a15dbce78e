//! The "durable" promise through a power cut, on the embedded store. `acidizer serve` runs under the power-cut shim
//! (`tests/support/powercut.c`, `tests/src/powercut.rs`), is killed in the middle of a load, and every write it had not fsynced is undone, as a
//! power cut would lose it; restarted (without the shim) on what is left, it still holds every acknowledged
//! increment. The same cut of the store opened with `synchronous` lowered — OFF, or NORMAL, which in WAL mode
//! fsyncs at checkpoints only (the store at FULL runs NORMAL too, and fsyncs the WAL itself before it answers) —
//! loses acknowledged increments: the cut is one the test can see fail.

use acidizer_tests::app::Server;
use acidizer_tests::powercut::{Calls, Cut, Shim};
use acidizer_tests::{App, Target, load};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Command;

const COUNTER: &str = "powercut";
const CLIENTS: usize = 16;
/// How many acknowledged increments an early cut waits for.
const EARLY_ACKS: usize = 200;

/// Longer than the store's checkpoint interval (a second): a pause of the load this long ends after a checkpoint
/// that found it stopped, and copied the whole WAL.
const PAUSE: Duration = Duration::from_millis(1200);

/// One run at a time: each has the cores to itself, so an early cut comes well before the store's first
/// checkpoint (a second after it opens).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What serves the data under the shim.
#[derive(Debug, Clone, Copy)]
enum Host {
    /// `acidizer serve`.
    Serve,
    /// The same API on the store opened at a `PRAGMA synchronous` level (`synchronous-host`).
    Synchronous(&'static str),
}

/// When the power is cut.
#[derive(Debug, Clone, Copy)]
enum When {
    /// As soon as [`EARLY_ACKS`] increments are acknowledged: before the store's first checkpoint, whose fsyncs
    /// would make durable, at any level but OFF, the commits before it.
    Early,
    /// After a first load, a [`PAUSE`] in which a checkpoint copies the whole WAL into the database file and
    /// fsyncs it, and [`EARLY_ACKS`] increments more, which write the WAL again from its start.
    AfterACheckpoint,
}

/// A server cut in the middle of a load and restarted on what the cut left.
struct AfterTheCut {
    app: App,
    acked: Vec<(String, u64)>,
    calls: Calls,
    cut: Cut,
    /// From the server's start to the cut.
    cut_after: Duration,
    /// With [`When::AfterACheckpoint`]: whether a checkpoint fsynced the database file in the pause, and whether
    /// the WAL was then written again from its start.
    checkpointed: Option<(bool, bool)>,
    _restarted: Server,
    _dir: tempfile::TempDir,
}

/// Starts `host` under the shim on a new data directory, loads it with [`CLIENTS`] clients, kills it (`kill -9`)
/// `when` said, cuts the power, and restarts `acidizer serve` without the shim on what is left.
async fn power_cut_mid_load(host: Host, when: When) -> AfterTheCut {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The shim watches the disk; the server makes its data directory there, as on a first start.
    let disk = dir.path().join("disk");
    let shim = Shim::build(dir.path(), &disk);
    let data = disk.join("data");
    let server = match host {
        Host::Serve => Server::start(&data, &[], &shim.env(), dir.path()).await,
        Host::Synchronous(level) => {
            let mut command = Command::new(env!("CARGO_BIN_EXE_synchronous-host"));
            command.arg(&data).arg(level);
            Server::run(command, &shim.env(), dir.path()).await
        }
    };
    let started = Instant::now();
    let mut acked = Vec::new();
    let mut restarts_before = None;
    if let When::AfterACheckpoint = when {
        let app = App::detached(server.base.clone(), Target::ServeSqlite, load::client());
        let first = load::run(&app, COUNTER, CLIENTS, 20).await;
        acked.extend(first.first.into_iter().map(|(key, ack)| (key, ack.value)));
        let paused = Instant::now();
        let synced = tokio::time::timeout(Duration::from_secs(5), async {
            let database = format!("data/{}", acidizer_store_sqlite::DATABASE_FILE);
            while paused.elapsed() < PAUSE || !shim.all_synced(&database) || database_pages(&data) < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        restarts_before = Some((synced.is_ok(), wal_restarts(&data)));
        println!("{host:?}: checkpointed: {}, the WAL is {} bytes", synced.is_ok(), file_size(&wal(&data)));
    }
    let (acked_after, clients) = load::until_stopped(&server.base, COUNTER, CLIENTS);
    load::wait_for_acks(&acked_after, EARLY_ACKS).await;
    server.kill_hard().await;
    let cut_after = started.elapsed();
    load::stopped(clients).await;
    acked.extend(acked_after.lock().expect("the acknowledged increments").iter().cloned());
    let calls = shim.calls();
    let cut = shim.cut();
    let checkpointed = restarts_before.map(|(synced, before)| (synced, wal_restarts(&data) > before));
    println!(
        "{host:?}, cut after {cut_after:.2?} and {} acknowledged increments; intercepted on data files: {calls}; \
         created but never made durable: {:?}; undone (changes, bytes): {:?} (deleted before the cut: {:?}); left: \
         database {} pages, WAL {} bytes",
        acked.len(),
        cut.uncreated,
        cut.undone,
        cut.gone,
        database_pages(&data),
        file_size(&wal(&data)),
    );

    let restarted = Server::start(&data, &[], &[], dir.path()).await;
    let app = App::detached(restarted.base.clone(), Target::ServeSqlite, load::client());
    AfterTheCut { app, acked, calls, cut, cut_after, checkpointed, _restarted: restarted, _dir: dir }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

fn wal(data: &Path) -> std::path::PathBuf {
    data.join(format!("{}-wal", acidizer_store_sqlite::DATABASE_FILE))
}

/// The WAL's checkpoint sequence number (in its header, big-endian at byte 12): one more each time the WAL is
/// written again from its start; none without a header.
fn wal_restarts(data: &Path) -> Option<u32> {
    let header = std::fs::read(wal(data)).unwrap_or_default();
    header.get(12..16).map(|n| u32::from_be_bytes(n.try_into().expect("4 bytes")))
}

/// How many pages the database file in `data` holds (a new database's page size: 2048 bytes).
fn database_pages(data: &Path) -> u64 {
    file_size(&data.join(acidizer_store_sqlite::DATABASE_FILE)) / 2048
}

/// The shim saw the store's writes and kept their undo records: a shim that intercepted nothing would undo
/// nothing, and the test could not fail.
fn assert_intercepted(calls: &Calls) {
    let writes = ["write", "pwrite", "pwrite64", "writev", "pwritev", "pwritev64"].map(|call| calls.get(call));
    assert!(writes.iter().sum::<u64>() > 0, "the shim intercepted no write of the data files: {calls}");
    assert!(calls.get("undo records") > 0, "the shim kept no undo record: {calls}");
}

/// A cut of the store at `level` early in a load loses acknowledged increments — the newest: what is left is still
/// a gap-free history.
async fn assert_a_cut_loses_acknowledged_increments(level: &'static str) {
    let after = power_cut_mid_load(Host::Synchronous(level), When::Early).await;
    assert_intercepted(&after.calls);
    let undid = after.cut.changes() > 0 || !after.cut.uncreated.is_empty();
    assert!(undid, "synchronous={level}: the cut undid no write and deleted nothing ({})", after.calls);
    let survivors = load::survivors(&after.app, COUNTER, &after.acked).await;
    println!(
        "synchronous={level}: {} of {} acknowledged increments lost; the counter came back at {}",
        survivors.missing.len(),
        after.acked.len(),
        survivors.n
    );
    assert!(
        !survivors.missing.is_empty(),
        "synchronous={level}: a power cut {:.2?} after the start lost none of {} acknowledged increments",
        after.cut_after,
        after.acked.len()
    );
    assert!(
        survivors.missing.iter().all(|(_, value)| *value > survivors.n),
        "synchronous={level}: what survives is every increment up to {}, none after",
        survivors.n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_power_cut_in_the_middle_of_a_load_loses_no_acknowledged_increment() {
    let after = power_cut_mid_load(Host::Serve, When::AfterACheckpoint).await;
    assert_intercepted(&after.calls);
    load::assert_all_acknowledged_survive(&after.app, COUNTER, &after.acked).await;
    // The cut came where described: after a checkpoint, with the WAL written again from its start.
    assert_eq!(after.checkpointed, Some((true, true)), "a checkpoint fsynced the database, then the WAL restarted");
}

/// An early cut, well before the store's first checkpoint: the data directory the store made on its first start is
/// there after the cut only because the store fsynced the directory above it (nothing else does; SQLite fsyncs the
/// data directory itself when it first syncs a new WAL's header or rollback journal).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_early_power_cut_at_synchronous_full_loses_no_acknowledged_increment() {
    let after = power_cut_mid_load(Host::Synchronous("full"), When::Early).await;
    assert_intercepted(&after.calls);
    assert!(after.calls.get("creates") > 0, "the shim saw the store's files created: {}", after.calls);
    assert_eq!(after.cut.uncreated, Vec::<String>::new(), "every file the store made is durable");
    load::assert_all_acknowledged_survive(&after.app, COUNTER, &after.acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_synchronous_normal_a_power_cut_loses_acknowledged_increments() {
    assert_a_cut_loses_acknowledged_increments("normal").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_synchronous_off_a_power_cut_loses_acknowledged_increments() {
    assert_a_cut_loses_acknowledged_increments("off").await;
}

/// The cut takes what was created in a directory not fsynced since — a file written and fsynced, a directory with
/// what it holds — and keeps what was created in a directory fsynced after: a disk that lost the unsynced
/// directory entries.
#[tokio::test]
async fn a_cut_takes_what_was_created_in_a_directory_never_fsynced_after() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let disk = dir.path().join("disk");
    let shim = Shim::build(dir.path(), &disk);
    // dd creates a file and fsyncs it (conv=fsync); `sync DIR` fsyncs a directory.
    let script = r#"write() { dd if=/dev/zero of="$1" bs=1k count=4 conv=fsync status=none; }
        mkdir "$1/kept" && write "$1/kept/file" && sync "$1/kept" && sync "$1" &&
        mkdir "$1/taken" && write "$1/taken/file" && sync "$1/taken" && write "$1/file""#;
    let status =
        Command::new("sh").args(["-c", script, "sh"]).arg(&disk).envs(shim.env()).status().await.expect("sh runs");
    assert!(status.success(), "the files are written");
    let calls = shim.calls();
    assert_eq!((calls.get("creates"), calls.get("directory syncs")), (5, 3), "{calls}");
    let cut = shim.cut();
    assert_eq!(cut.uncreated, ["taken", "file"], "the entries made in a directory never fsynced after");
    assert!(!disk.join("taken").exists() && !disk.join("file").exists(), "{:?}", cut.uncreated);
    assert_eq!(file_size(&disk.join("kept/file")), 4096, "a file fsynced in a directory fsynced is kept whole");
}
