//! Crash test: a child process runs the engine on a data directory while three threads stream
//! commands into it, and is killed with SIGKILL at random moments, many rounds on the same
//! directory. After each kill: every acknowledged command is in the journal, the state rebuilt
//! from scratch equals the state rebuilt from the newest snapshot and the state a restarted engine
//! recovers, and every invariant (conservation first) holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_engine::{Engine, EngineConfig, ReplayFrom, SystemClock, replay};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 12;

#[test]
fn acknowledged_commands_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut last_seq = 0;
    // A fixed sequence of kill delays (SplitMix64), so a failing run can be repeated.
    let mut state = 0x5eed_u64;
    let mut next_delay_ms = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (state ^ (state >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        20 + (z >> 33) % 400
    };

    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bourse"))
            // Any free port for the admin app too: tests run side by side.
            .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
            .args(["debug", "feed", "--threads", "3", "--snapshot-every", "700", "--seed"])
            .arg(round.to_string())
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let stdout = child.stdout.take().unwrap();
        let reader = {
            let (acked, count) = (acked.clone(), count.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let seq: u64 = line.strip_prefix("ack ").unwrap().parse().unwrap();
                    acked.fetch_max(seq, Ordering::SeqCst);
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // Let it get going (recovery, setup, some orders), then kill it mid-stream.
        let started = Instant::now();
        while count.load(Ordering::SeqCst) < 50 {
            assert!(started.elapsed() < Duration::from_secs(60), "round {round}: no progress");
            assert!(child.try_wait().unwrap().is_none(), "round {round}: feed exited early");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(next_delay_ms()));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acked = acked.load(Ordering::SeqCst);

        let scratch = replay(&data, ReplayFrom::Scratch).unwrap();
        assert!(
            scratch.exchange.seq() >= acked,
            "round {round}: acknowledged seq {acked} but the journal ends at {}",
            scratch.exchange.seq()
        );
        scratch.exchange.check_invariants().unwrap();
        assert!(scratch.exchange.audit().iter().all(|t| t.balanced()));
        let hash = scratch.exchange.state_hash();

        let snap = replay(&data, ReplayFrom::LatestSnapshot).unwrap();
        assert_eq!(snap.exchange.state_hash(), hash, "round {round}: snapshot replay differs");

        let mut config = EngineConfig::new(&data);
        config.check_invariants = true;
        let recovered = Engine::start(config, SystemClock).unwrap().shutdown().unwrap();
        assert_eq!(recovered.state_hash(), hash, "round {round}: engine recovery differs");
        assert!(recovered.seq() > last_seq, "round {round}: no new commands");
        last_seq = recovered.seq();
        eprintln!(
            "round {round}: killed after ack {acked}, journal at {last_seq}, snapshot {}",
            snap.snapshot_seq
        );
    }
}

#[test]
fn replay_verify_reports_agreeing_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_bourse"))
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args([
            "debug",
            "feed",
            "--threads",
            "2",
            "--count",
            "300",
            "--snapshot-every",
            "250",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let output = Command::new(env!("CARGO_BIN_EXE_bourse"))
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args(["replay", "--verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("hashes agree") && text.contains("every asset balances"), "{text}");
    let hashes: Vec<&str> = text.lines().filter_map(|l| l.split("hash ").nth(1)).collect();
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes[0], hashes[1]);

    // A damaged journal record before the tail is an error, never skipped.
    let journal = dir.path().join("journal");
    let segment = std::fs::read_dir(&journal).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bourse"))
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args(["replay", "--verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("corrupt"), "{err}");
}

#[test]
fn bench_engine_prints_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_bourse"))
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args([
            "bench",
            "engine",
            "--commands",
            "20000",
            "--resting",
            "5000",
            "--users",
            "100",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in [
        "matching_cmds_per_s",
        "p50_ns",
        "p99_ns",
        "p999_ns",
        "durable_cmds_per_s",
        "replay_cmds_per_s",
        "rss_bytes_1m_resting",
    ] {
        assert!(figures[key].as_u64().is_some_and(|v| v > 0), "{key} missing in {figures}");
    }
    assert_eq!(figures["resting_orders"], 5000);
    assert!(figures["trades"].as_u64().unwrap() > 0);
}

#[test]
fn bench_link_prints_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_bourse"))
        .args(["bench", "link", "--commands", "4000", "--sequential", "100", "--users", "100"])
        .arg("--json")
        .env("BOURSE_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in [
        "local_round_trip_p50_us",
        "local_round_trip_p99_us",
        "link_round_trip_p50_us",
        "link_round_trip_p99_us",
        "local_cmds_per_s",
        "link_cmds_per_s",
    ] {
        assert!(figures[key].as_u64().is_some_and(|v| v > 0), "{key} missing in {figures}");
    }
    assert_eq!(figures["pipelined"], 4000);
}
