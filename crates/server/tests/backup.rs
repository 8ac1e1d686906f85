//! Backups of a running exchange and their restore, on both databases: a backup taken while
//! two users stream crossing orders restores into an empty data directory with the recorded
//! state hash, and the restored exchange serves every order that was acknowledged before the
//! backup's point and none after it; damaged backups are refused with a clear error and leave
//! nothing behind; retention removes older backups.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bourse_backup::{BackupError, Destination, Retention};
use common::{App, Backend, User, deposit, register};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Places orders for `user` until `stop`, alternating prices around 60,000 so the two
/// streams cross; returns the ids of the orders the exchange acknowledged (201), in order.
async fn stream_orders(user: Arc<User>, side: &'static str, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut acked = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let price = 59_990 + (i % 20);
        let order = json!({"market": "BTC-USDT", "side": side, "type": "limit",
            "price": price.to_string(), "quantity": "0.001"});
        let (status, body) = user.signed(Method::POST, "/api/v1/orders", "", Some(order)).await;
        assert_eq!(status, 201, "{body}");
        acked.push(body["order"]["id"].as_u64().unwrap());
        i += 1;
    }
    acked
}

/// Waits until the read models have caught up with the engine.
async fn caught_up(app: &App) {
    for _ in 0..400 {
        let health: serde_json::Value =
            reqwest::get(format!("{}/api/v1/health", app.url)).await.unwrap().json().await.unwrap();
        if health["projector_lag"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the projector did not catch up");
}

async fn backup_while_orders_stream(backend: Backend) {
    let mut app = App::spawn(backend).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let mut alice = register(&app, "alice@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;
    deposit(&app, alice.id, "BTC", "100").await;
    deposit(&app, bob.id, "USDT", "10000000").await;
    alice.create_key(&["read", "trade"]).await;
    bob.create_key(&["read", "trade"]).await;
    let (alice, bob) = (Arc::new(alice), Arc::new(bob));

    let stop = Arc::new(AtomicBool::new(false));
    let sells = tokio::spawn(stream_orders(alice.clone(), "sell", stop.clone()));
    let buys = tokio::spawn(stream_orders(bob.clone(), "buy", stop.clone()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A snapshot mid-stream: the backup rebuilds its state from it and the journal after it.
    let engine = app.server().engine();
    let snapshot =
        tokio::task::spawn_blocking(move || engine.snapshot_blocking()).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dest = tempfile::tempdir().unwrap();
    let dest_text = dest.path().display().to_string();
    // Orders acknowledged before the backup was asked for: all must be in it.
    let before = app.server().state.engine.status().seq;
    let created = bourse_server::backups::run(&app.server().state, Some(&dest_text)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (sells, buys) = (sells.await.unwrap(), buys.await.unwrap());
    let manifest = &created.manifest;
    assert!(manifest.seq >= before, "backup at {} before the request's {before}", manifest.seq);
    assert!(sells.len() > 5 && buys.len() > 5, "{} sells, {} buys", sells.len(), buys.len());
    assert!(created.paused < Duration::from_secs(1), "engine held {:?}", created.paused);
    let engine_after = app.server().state.engine.status().seq;
    assert!(engine_after > manifest.seq, "orders went on after the backup");
    let names: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let database = match backend {
        Backend::Sqlite => "database.sqlite",
        Backend::Postgres => "database.pgdump",
    };
    assert!(names.contains(&database), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("journal/")), "{names:?}");
    assert!(
        names.contains(&format!("snapshots/snap-{:020}.bin", manifest.seq).as_str()),
        "{names:?}"
    );
    assert!(snapshot > 0 && snapshot < manifest.seq, "{snapshot} {}", manifest.seq);
    assert_eq!(names.iter().filter(|n| n.starts_with("snapshots/")).count(), 1, "{names:?}");
    // The attempt is recorded, and health reports it.
    let last = app.server().state.store.last_good_backup().await.unwrap().unwrap();
    assert_eq!((last.name.as_str(), last.seq), (manifest.name.as_str(), manifest.seq));
    let health: serde_json::Value =
        reqwest::get(format!("{}/api/v1/health", app.url)).await.unwrap().json().await.unwrap();
    assert_eq!(health["backup"]["last_name"], manifest.name.as_str(), "{health}");
    let metrics = reqwest::get(format!("{}/metrics", app.server().admin_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(&format!("bourse_backup_last_seq {}\n", manifest.seq)), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "bourse_backup_last_success_timestamp_seconds {}\n",
            last.finished_at_ms / 1000
        )),
        "{metrics}"
    );
    app.stop().await;

    // Restore into an empty directory (and, for PostgreSQL, an empty database).
    let restored_dir = tempfile::tempdir().unwrap();
    let data = restored_dir.path().join("data");
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(bourse_store::testing::fresh_postgres_url().await),
    };
    let located = Destination::locate(&dest_text, None).await.unwrap();
    assert_eq!(located.name, manifest.name);
    let restored = bourse_backup::restore(&located, &data, database_url.as_deref()).await.unwrap();
    assert_eq!(
        (restored.seq, restored.state_hash.as_str()),
        (manifest.seq, manifest.state_hash.as_str())
    );
    assert_eq!(restored.replayed, manifest.seq);
    let replayed = bourse_engine::replay(&data, bourse_engine::ReplayFrom::Scratch).unwrap();
    assert_eq!(replayed.exchange.state_hash().to_string(), manifest.state_hash);
    // A restore never overwrites.
    let again = bourse_backup::restore(&located, &data, None).await.unwrap_err();
    assert!(
        matches!(again, BackupError::Usage(_)) && again.to_string().contains("not empty"),
        "{again}"
    );

    // The restored exchange: same users, keys and secret; every order acknowledged up to the
    // backup's point is there, none after it, and the cut is one point in the order ids.
    let mut back = App {
        server: None,
        url: String::new(),
        data_dir: restored_dir,
        database_url: database_url
            .unwrap_or_else(|| format!("sqlite://{}", data.join("bourse.db").display())),
        secret: app.secret.clone(),
        extra_env: vec![("BOURSE_DATA_DIR".into(), data.display().to_string())],
    };
    back.start().await;
    caught_up(&back).await;
    assert_eq!(back.server().state.engine.status().seq, manifest.seq);
    let (alice_back, bob_back) = (on(&alice, &back), on(&bob, &back));
    let mut present = Vec::new();
    for (user, ids) in [(&alice_back, &sells), (&bob_back, &buys)] {
        for id in ids {
            let (status, body) =
                user.signed(Method::GET, &format!("/api/v1/orders/{id}"), "", None).await;
            assert!(status == 200 || status == 404, "{status} {body}");
            present.push((*id, status == 200));
        }
    }
    present.sort();
    let cut = present.iter().rposition(|(_, here)| *here).expect("no order restored");
    assert!(
        present[..=cut].iter().all(|(_, here)| *here),
        "an acknowledged order before the cut is missing: {present:?}"
    );
    assert!(present[cut + 1..].iter().all(|(_, here)| !*here));
    assert!(cut + 1 < present.len(), "the orders after the backup are not in it");
    // Balances agree with the engine and trading goes on.
    let (status, balances) = alice_back.signed(Method::GET, "/api/v1/balances", "", None).await;
    assert_eq!(status, 200, "{balances}");
    let order = json!({"market": "BTC-USDT", "side": "sell", "type": "limit", "price": "70000", "quantity": "0.001"});
    let (status, body) = alice_back.signed(Method::POST, "/api/v1/orders", "", Some(order)).await;
    assert_eq!(status, 201, "{body}");
    back.stop().await;
}

/// The same user and API key, talking to another server.
fn on(user: &User, app: &App) -> User {
    User {
        http: common::cookie_client(),
        base: app.url.clone(),
        email: user.email.clone(),
        id: user.id,
        key: user.key.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_orders_stream_sqlite() {
    backup_while_orders_stream(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_orders_stream_postgres() {
    backup_while_orders_stream(Backend::Postgres).await;
}

/// Copies a backup directory (two levels: files and journal/snapshots).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_backups_are_refused_and_retention_keeps_the_newest() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let dest = tempfile::tempdir().unwrap();
    let dest_text = dest.path().display().to_string();
    let state = &app.server().state;
    let good = bourse_server::backups::run(state, Some(&dest_text)).await.unwrap();
    let good_dir = dest.path().join(&good.manifest.name);
    let verified = bourse_backup::verify(
        &Destination::locate(&good_dir.display().to_string(), None).await.unwrap(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(verified.state_hash, good.manifest.state_hash);

    // Each damage in its own copy of the backup.
    let scratch = tempfile::tempdir().unwrap();
    let damaged = |tag: &str| {
        let dir = scratch.path().join(tag).join(&good.manifest.name);
        copy_dir(&good_dir, &dir);
        dir
    };
    let segment =
        good.manifest.files.iter().find(|f| f.path.starts_with("journal/")).unwrap().path.clone();
    // 1. A flipped byte in the journal.
    let flipped = damaged("flipped");
    let path = flipped.join(&segment);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    // 2. A missing database.
    let missing = damaged("missing");
    std::fs::remove_file(missing.join("database.sqlite")).unwrap();
    // 3. A manifest whose state hash is not the journal's (checksums all fine).
    let lying = damaged("lying");
    let text = std::fs::read_to_string(lying.join("manifest.json")).unwrap();
    let text = text.replace(&good.manifest.state_hash, &"0".repeat(64));
    std::fs::write(lying.join("manifest.json"), text).unwrap();
    // 4. A manifest that is not JSON.
    let garbled = damaged("garbled");
    std::fs::write(garbled.join("manifest.json"), b"{\"format\": 1, \"na").unwrap();
    for (dir, says) in [
        (&flipped, format!("{segment} does not match its checksum")),
        (&missing, "database.sqlite is missing".to_string()),
        (&lying, "the manifest says".to_string()),
        (&garbled, "manifest.json does not parse".to_string()),
    ] {
        let target = scratch.path().join("restore-target");
        let result = match Destination::locate(&dir.display().to_string(), None).await {
            Ok(located) => bourse_backup::restore(&located, &target, None).await.map(drop),
            Err(e) => Err(e),
        };
        let error = result.unwrap_err();
        assert!(matches!(error, BackupError::Damaged(_)), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with("the backup is damaged and was not restored") && text.contains(&says),
            "{text}"
        );
        assert!(!target.exists(), "a refused restore left {}", target.display());
    }

    // Retention: one a day kept, so two more backups today leave only the newest.
    let mut config = state.config.backup.clone();
    config.keep_daily = 1;
    config.keep_weekly = 0;
    assert_eq!(config.retention(), Retention { daily: 1, weekly: 0 });
    let dest_dir = Destination::parse(&dest_text, None).unwrap();
    let live = bourse_backup::Live {
        engine: &state.engine,
        store: state.store.as_ref(),
        data_dir: &state.config.data_dir,
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = bourse_backup::create(live, &dest_dir, config.retention()).await.unwrap();
    assert_eq!(second.expired, vec![good.manifest.name.clone()]);
    let left: Vec<String> = dest_dir.backups().await.unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(left, vec![second.manifest.name.clone()]);
    assert!(!good_dir.exists());
    // Nothing half-written is left in the destination.
    let entries: Vec<_> =
        std::fs::read_dir(dest.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
}

/// Starts `tests/backup/s3_server.py` (moto's S3 with signatures checked); returns the process
/// (killed on drop) and its bucket settings.
async fn s3_server() -> (tokio::process::Child, bourse_backup::S3Settings) {
    use tokio::io::AsyncBufReadExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/backup/s3_server.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the S3 server did not start")
        .unwrap()
        .expect("the S3 server did not start (scripts/test installs moto[server])");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let settings = bourse_backup::S3Settings {
        endpoint: v["endpoint"].as_str().unwrap().into(),
        region: "us-east-1".into(),
        access_key: v["access_key"].as_str().unwrap().into(),
        secret_key: bourse_core::Secret::new(v["secret_key"].as_str().unwrap()),
        path_style: true,
        part_bytes: bourse_backup::PART_BYTES,
    };
    (child, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_to_an_s3_bucket_with_signed_requests() {
    let (_s3, settings) = s3_server().await;
    let app = App::spawn_with(
        Backend::Sqlite,
        &[
            ("BOURSE_BACKUP__S3_ENDPOINT", &settings.endpoint),
            ("BOURSE_BACKUP__S3_ACCESS_KEY", &settings.access_key),
            ("BOURSE_BACKUP__S3_SECRET_KEY", settings.secret_key.expose()),
            ("BOURSE_BACKUP__KEEP_DAILY", "1"),
            ("BOURSE_BACKUP__KEEP_WEEKLY", "0"),
        ],
    )
    .await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let state = &app.server().state;
    let url = "s3://bourse-backups/exchange/nightly";
    let first = bourse_server::backups::run(state, Some(url)).await.unwrap();
    assert!(
        first.location.starts_with("s3://bourse-backups/exchange/nightly/bourse-"),
        "{}",
        first.location
    );
    let mut alice = register(&app, "alice@example.com").await;
    deposit(&app, alice.id, "BTC", "1").await;
    alice.create_key(&["read"]).await;
    let second = bourse_server::backups::run(state, Some(url)).await.unwrap();
    assert!(second.manifest.seq > first.manifest.seq);
    // Retention ran in the bucket: only the newest is left.
    assert_eq!(second.expired, vec![first.manifest.name.clone()]);
    let located = Destination::locate(url, Some(&settings)).await.unwrap();
    assert_eq!(located.name, second.manifest.name);
    let remaining = located.dest.backups().await.unwrap();
    assert_eq!(remaining.len(), 1, "{remaining:?}");

    // The restore drill and a restore, both from the bucket.
    let drill = bourse_backup::verify(&located, None).await.unwrap();
    assert_eq!(drill.state_hash, second.manifest.state_hash);
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    let restored = bourse_backup::restore(&located, &data, None).await.unwrap();
    assert_eq!(restored.seq, second.manifest.seq);
    let store = bourse_store::connect(&format!("sqlite://{}", data.join("bourse.db").display()))
        .await
        .unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert!(store.user_by_email("alice@example.com").await.unwrap().is_some());
    store.close().await;

    // A wrong secret is refused by the server, and the error says why.
    let wrong = bourse_backup::S3Settings {
        secret_key: bourse_core::Secret::new("not-the-secret"),
        ..settings.clone()
    };
    let error = Destination::locate(url, Some(&wrong)).await.unwrap_err();
    assert!(error.to_string().contains("SignatureDoesNotMatch"), "{error}");

    // Large files go up in parts and come back whole.
    let parts = bourse_backup::S3Settings { part_bytes: 5 << 20, ..settings.clone() };
    let bucket = bourse_backup::S3::open("s3://bourse-backups/parts", &parts).unwrap();
    let big = target.path().join("big");
    let content: Vec<u8> =
        (0..(11u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&big, &content).unwrap();
    let (b, back) = (big.clone(), target.path().join("back"));
    let back2 = back.clone();
    tokio::task::spawn_blocking(move || {
        bucket.put_file("big", &b).unwrap();
        bucket.get_file("big", &back2).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_job_backs_up_and_counts_from_the_last_backup() {
    let dest = tempfile::tempdir().unwrap();
    let dest_text = dest.path().display().to_string();
    let settings = [
        ("BOURSE_BACKUP__DEST", dest_text.as_str()),
        ("BOURSE_BACKUP__INTERVAL_S", "3600"),
        ("BOURSE_BACKUP__FIRST_AFTER_S", "1"),
    ];
    let mut app = App::spawn_with(Backend::Sqlite, &settings).await;
    let mut first = None;
    for _ in 0..100 {
        first = app.server().state.store.last_good_backup().await.unwrap();
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = first.expect("no scheduled backup within 10 s");
    assert_eq!(first.destination, dest_text);
    assert!(dest.path().join(&first.name).join("manifest.json").is_file());
    // Restarted within the interval: the next one is an hour after the last, not at start.
    app.stop().await;
    app.start().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let recent = app.server().state.store.recent_backups(10).await.unwrap();
    assert_eq!(recent.len(), 1, "{recent:?}");
    app.stop().await;
}
