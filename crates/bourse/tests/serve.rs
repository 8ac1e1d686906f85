//! The operator's view: `bourse init`, `migrate`, `asset add`, `market add|halt|resume`,
//! `serve` until SIGTERM, and clear errors for bad configuration — all through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bourse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bourse"))
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args(args)
        .env_remove("BOURSE_SECRET_KEY")
        .env("BOURSE_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = bourse(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = bourse(args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

fn http_post_json(addr: &str, path: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn operator_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bourse.toml");
    let data = dir.path().join("data");
    let c = config.to_str().unwrap();
    ok(&["init", "--config", c, "--data-dir", data.to_str().unwrap()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(fails(&["init", "--config", c]).contains("not overwriting"));
    assert!(ok(&["migrate", "--config", c]).contains("sqlite database: 14 migration(s) applied"));
    assert!(ok(&["migrate", "--config", c]).contains("0 migration(s) applied"));
    assert!(
        ok(&["asset", "add", "BTC", "--scale", "8", "--config", c])
            .contains("asset BTC added with id 1")
    );
    ok(&["asset", "add", "USDT", "--scale", "6", "--config", c]);
    assert!(
        fails(&["asset", "add", "BTC", "--scale", "8", "--config", c]).contains("already exists")
    );
    let out =
        ok(&["market", "add", "BTC/USDT", "--tick", "0.01", "--lot", "0.0001", "--config", c]);
    assert!(out.contains("market BTC/USDT added with id 1"), "{out}");
    assert!(
        fails(&["market", "add", "BTC/USDT", "--tick", "0.001", "--lot", "0.00001", "--config", c])
            .contains("refused")
    );
    assert!(
        fails(&["market", "add", "BTC/EUR", "--tick", "0.01", "--lot", "0.0001", "--config", c])
            .contains("unknown asset EUR")
    );
    ok(&["market", "halt", "BTC/USDT", "--config", c]);

    // Serve; the printed URL answers; operator commands refuse while it runs.
    let (mut child, addr) = serve(c);
    let markets = http_get(&addr, "/api/v1/markets");
    assert!(
        markets.contains("\"symbol\":\"BTC-USDT\"") && markets.contains("\"status\":\"halted\""),
        "{markets}"
    );
    assert!(http_get(&addr, "/api/v1/health").contains("\"status\":\"ok\""));
    // `bourse status` asks the running exchange.
    let url = format!("http://{addr}");
    let status = bourse(&["status", "--url", &url]);
    let said = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.status.success(), "{said}");
    assert!(
        said.contains("OK    engine       running") && said.contains("OK    ready        yes"),
        "{said}"
    );
    // A user signs up; the operator locks and unlocks them beside the running exchange.
    let signup = r#"{"email":"mallory@example.com","password":"a long enough passphrase"}"#;
    assert!(http_post_json(&addr, "/api/v1/auth/signup", signup).starts_with("HTTP/1.1 202"));
    let out = ok(&["user", "lock", "Mallory@example.com", "--config", c]);
    assert!(out.contains("(mallory@example.com) locked; 0 session(s) ended"), "{out}");
    assert!(ok(&["user", "unlock", "1", "--config", c]).contains("unlocked"));
    assert!(fails(&["user", "lock", "nobody@example.com", "--config", c]).contains("no user"));
    assert!(
        fails(&["market", "resume", "BTC/USDT", "--config", c])
            .contains("stop `bourse serve` first")
    );

    // SIGTERM: a clean stop with a final snapshot.
    let started = Instant::now();
    let mut child = child.0.take().unwrap();
    terminate(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // Stopped, it does not answer: exit 2.
    let status = bourse(&["status", "--url", &url]);
    assert_eq!(status.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&status.stderr).contains("does not answer"));
    assert!(std::fs::read_dir(data.join("snapshots")).unwrap().count() > 0);
    ok(&["market", "resume", "BTC/USDT", "--config", c]);
    // Cancelling an order that does not exist (for that user) is refused with the engine's
    // reason.
    let err = fails(&["order", "cancel", "99", "--user", "1", "--config", c]);
    assert!(err.contains("refused: unknown order"), "{err}");
    // Editing a market: what is given changes, the rest stays; the engine's rules still hold.
    let edit = |extra: &[&str]| {
        let mut args = vec!["market", "edit"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--config", c]);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| bourse(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = run(edit(&["BTC/USDT", "--maker-fee-ppm", "500", "--min-notional", "10"]));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("grid and limits changed"), "{text}");
    assert!(text.contains("fees maker 500 ppm, taker 2000 ppm"), "{text}");
    let out = run(edit(&["BTC/USDT"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to change"));
    let out = run(edit(&["BTC/EUR", "--lot", "1"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown market"));
    // One lot at a 0.001 tick would cost a tenth of a USDT minor unit: refused.
    let out = run(edit(&["BTC/USDT", "--tick", "0.001"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused: invalid market"));
    assert!(ok(&["replay", "--verify", "--data-dir", data.to_str().unwrap()]).contains("hash"));
}

struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn terminate(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn clear_errors_for_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    assert!(fails(&["serve"]).contains("no configuration"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = [").unwrap();
    assert!(fails(&["serve", "--config", bad.to_str().unwrap()]).contains("invalid config"));
    std::fs::write(&bad, "secret_key = \"abcd\"").unwrap();
    assert!(fails(&["serve", "--config", bad.to_str().unwrap()]).contains("at least 32 bytes"));
    std::fs::write(&bad, "secret_key = \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"/proc/bourse-cannot-write\"\n").unwrap();
    let err = fails(&["serve", "--config", bad.to_str().unwrap()]);
    assert!(err.contains("data directory"), "{err}");
    assert!(!err.contains("00112233445566778899"), "secrets never printed: {err}");
    let missing = dir.path().join("missing.toml");
    assert!(
        fails(&["serve", "--config", missing.to_str().unwrap()])
            .contains("cannot read config file")
    );
}

/// `bourse admin create ARGS` with `password` on standard input.
fn admin_create(args: &[&str], password: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bourse"))
        .args(["admin", "create"])
        .args(args)
        .env_remove("BOURSE_SECRET_KEY")
        .env("BOURSE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn admin_create_prints_the_totp_secret_as_a_url_and_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bourse.toml");
    let c = config.to_str().unwrap();
    ok(&["init", "--config", c, "--data-dir", dir.path().join("data").to_str().unwrap()]);
    let args = ["--email", "Ops@Example.com", "--role", "superadmin", "--config", c];
    let out = admin_create(&args, "a long admin passphrase");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("(ops@example.com, superadmin) created"), "{stdout}");
    assert!(stdout.contains("otpauth://totp/") && stdout.contains("secret="), "{stdout}");
    assert!(stdout.contains('▀') || stdout.contains('▄'), "a QR code: {stdout}");
    // The same e-mail again, a role that does not exist, a weak password: refused.
    let again = admin_create(&args, "another long passphrase");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let bad_role = admin_create(&["--email", "x@example.com", "--role", "root", "--config", c], "");
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("no role \"root\""));
    let weak = admin_create(&["--email", "y@example.com", "--config", c], "short");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"), "{weak:?}");
}

#[test]
fn json_logs_carry_one_line_per_request_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bourse.toml");
    let c = config.to_str().unwrap();
    ok(&["init", "--config", c, "--data-dir", dir.path().join("data").to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_bourse"))
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .env("BOURSE_LOG", "info")
        .env("BOURSE_LOG_FORMAT", "json")
        .args(["serve", "--config", c, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = KillOnDrop(Some(child));
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    // The client's id is echoed and logged; without one, the server makes one.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /api/v1/time HTTP/1.1\r\nHost: {addr}\r\nX-Request-Id: req-42\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.to_ascii_lowercase().contains("x-request-id: req-42"), "{answer}");
    let made = http_get(&addr, "/api/v1/markets");
    let made_id = made
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-request-id: ").map(str::to_string))
        .unwrap();
    assert_eq!(made_id.trim().len(), 16, "{made}");
    terminate(child.0.as_ref().unwrap().id());
    child.0.take().unwrap().wait().unwrap();
    let mut logs = String::new();
    BufReader::new(stderr).read_to_string(&mut logs).unwrap();
    // Every line is one JSON object; the request's line has its id, route and status.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let request =
        lines.iter().find(|l| l["request_id"] == "req-42").unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(
        (request["method"].as_str(), request["route"].as_str(), request["status"].as_u64()),
        (Some("GET"), Some("/api/v1/time"), Some(200)),
        "{request}"
    );
    assert_eq!(
        (request["target"].as_str(), request["level"].as_str()),
        (Some("bourse::http"), Some("INFO"))
    );
    assert!(request["latency_us"].is_u64() && request["client"] == "127.0.0.1", "{request}");
    assert!(lines.iter().any(|l| l["request_id"] == made_id.trim()), "{logs}");
}

/// Starts `bourse serve` on any free port (the admin app's too: tests run side by side);
/// returns the process and its address. The process is killed on drop, so a test that fails
/// before its SIGTERM leaks no server (which would keep the suite's output pipe open).
fn serve(config: &str) -> (KillOnDrop, String) {
    let (child, line) = serve_with(&["--config", config, "--listen", "127.0.0.1:0"], &[]);
    (child, after(&line, "http://").to_string())
}

/// The value after `label` in `text`, up to the next space, comma or line end.
fn after<'a>(text: &'a str, label: &str) -> &'a str {
    let start = text.find(label).unwrap_or_else(|| panic!("no {label:?} in {text}")) + label.len();
    text[start..].split([' ', ',', '\n']).next().unwrap()
}

#[test]
fn backup_and_restore_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bourse.toml");
    let c = config.to_str().unwrap();
    let data = dir.path().join("data");
    let backups = dir.path().join("backups");
    let b = backups.to_str().unwrap();
    ok(&["init", "--config", c, "--data-dir", data.to_str().unwrap()]);
    ok(&["asset", "add", "BTC", "--scale", "8", "--config", c]);
    ok(&["asset", "add", "USDT", "--scale", "6", "--config", c]);
    assert!(fails(&["backup", "--config", c]).contains("no destination"));

    // Stopped: the command opens the exchange itself.
    let out = ok(&["backup", b, "--config", c]);
    assert!(out.contains("backup bourse-") && out.contains(" written to "), "{out}");
    assert!(!out.contains("asking the running exchange"), "{out}");

    // Running: it asks the exchange over its control socket (mode 0600).
    let (mut child, addr) = serve(c);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("control.sock")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let status =
        String::from_utf8(bourse(&["status", "--url", &format!("http://{addr}")]).stdout).unwrap();
    assert!(status.contains("OK    backups      last bourse-"), "{status}");
    let signup = r#"{"email":"carol@example.com","password":"a long enough passphrase"}"#;
    assert!(http_post_json(&addr, "/api/v1/auth/signup", signup).starts_with("HTTP/1.1 202"));
    let out = ok(&["backup", b, "--config", c]);
    assert!(out.contains("asking the running exchange"), "{out}");
    let name = after(&out, "backup ").to_string();
    let hash = after(&out, "state hash ").to_string();
    assert_eq!(hash.len(), 64, "{out}");
    let out = ok(&["backup", "--verify", &format!("{b}/{name}")]);
    assert!(out.contains("backup verified") && out.contains(&hash), "{out}");
    terminate(child.0.as_ref().unwrap().id());
    assert!(child.0.take().unwrap().wait().unwrap().success());

    // Restore the newest backup into a new directory; it is the running exchange's.
    let restored = dir.path().join("restored");
    let r = restored.to_str().unwrap();
    let out = ok(&["restore", b, "--data-dir", r]);
    assert!(
        out.contains(&name) && out.contains(&hash) && out.contains("every checksum matches"),
        "{out}"
    );
    let replay = ok(&["replay", "--verify", "--data-dir", r]);
    assert!(replay.contains(&hash) && replay.contains("hashes agree"), "{replay}");
    assert!(fails(&["restore", b, "--data-dir", r]).contains("not empty"));

    // A damaged copy is refused and leaves nothing behind.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    let copy = damaged.join(&name);
    assert!(
        Command::new("cp")
            .args(["-r", &format!("{b}/{name}"), copy.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let db = copy.join("database.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&db, bytes).unwrap();
    let target = dir.path().join("never");
    let err = fails(&["restore", copy.to_str().unwrap(), "--data-dir", target.to_str().unwrap()]);
    assert!(err.contains("the backup is damaged") && err.contains("database.sqlite has"), "{err}");
    assert!(!target.exists());
    let err = fails(&["backup", "--verify", copy.to_str().unwrap()]);
    assert!(err.contains("the backup is damaged"), "{err}");
}

/// `bourse serve ARGS` with `env`; returns the child and its first line of output.
fn serve_with(args: &[&str], env: &[(&str, &str)]) -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bourse"))
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .arg("serve")
        .args(args)
        .env("BOURSE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(Some(child));
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (child, line)
}

/// A split deployment as the systemd units run it: `serve --roles engine` with its link, and the
/// gateway, the wallet, the worker and the admin app each in a process of its own reaching it,
/// on one data directory and database; `bourse status` over all of them.
#[test]
fn split_deployment_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bourse.toml");
    let c = config.to_str().unwrap();
    ok(&["init", "--config", c, "--data-dir", dir.path().join("data").to_str().unwrap()]);
    ok(&["asset", "add", "BTC", "--scale", "8", "--config", c]);
    let err = fails(&["serve", "--config", c, "--roles", "gateway"]);
    assert!(err.contains("[link] connect"), "{err}");
    let err = fails(&["serve", "--config", c, "--roles", "engine"]);
    assert!(err.contains("[link] listen"), "{err}");
    let err = fails(&["serve", "--config", c, "--roles", "engine,gatway"]);
    assert!(err.contains("unknown role"), "{err}");

    // Withdrawal rules name an asset: only the roles that apply them check it.
    let limit = ("BOURSE_WITHDRAWALS__DAILY_LIMITS__BTC", "1.5");
    let (mut engine, line) = serve_with(
        &["--config", c, "--roles", "engine"],
        &[("BOURSE_LINK__LISTEN", "127.0.0.1:0"), limit],
    );
    assert!(line.starts_with("bourse engine is running, its link at "), "{line}");
    let link = after(&line, "its link at ").to_string();
    let engine_ops =
        after(&line, "health and metrics at http://").trim_end_matches(';').to_string();
    let joined = [("BOURSE_LINK__CONNECT", link.as_str()), limit];
    let (mut gateway, line) =
        serve_with(&["--config", c, "--roles", "gateway", "--listen", "127.0.0.1:0"], &joined);
    assert!(line.contains("roles gateway;"), "{line}");
    let addr = after(&line, "running at http://").to_string();
    let mut processes = vec![(engine_ops.clone(), "engine")];
    let mut children = Vec::new();
    for role in ["wallet", "worker", "admin"] {
        let (child, line) = serve_with(&["--config", c, "--roles", role], &joined);
        assert!(line.starts_with(&format!("bourse roles {role} are running")), "{line}");
        let at = if role == "admin" { "the admin app at http://" } else { "at http://" };
        processes.push((after(&line, at).trim_end_matches(';').to_string(), role));
        children.push(child);
    }

    // The gateway serves the engine's assets, read over the link.
    let assets = http_get(&addr, "/api/v1/assets");
    assert!(assets.starts_with("HTTP/1.1 200") && assets.contains("\"BTC\""), "{assets}");
    // Each process reports itself ready, with its roles; the engine's has its metrics.
    for ops in std::iter::once(&addr).chain(processes.iter().map(|(ops, _)| ops)) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !http_get(ops, "/ready").starts_with("HTTP/1.1 200") {
            assert!(Instant::now() < deadline, "{ops}: {}", http_get(ops, "/ready"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(http_get(&engine_ops, "/metrics").contains("bourse_engine_running 1"));
    let mut args = vec!["status".to_string(), "--url".into(), format!("http://{addr}")];
    for (ops, _) in &processes {
        args.extend(["--url".to_string(), format!("http://{ops}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let status = ok(&args);
    assert!(status.contains("engine"), "{status}");
    for (ops, role) in &processes {
        assert!(status.contains(&format!("{role} at http://{ops}: ready")), "{status}");
    }
    // A process that stops turns the status red.
    let wallet = children.first_mut().unwrap().0.as_mut().unwrap();
    terminate(wallet.id());
    assert!(wallet.wait().unwrap().success());
    let out = bourse(&args);
    let said = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("http://{} does not answer", processes[1].0)), "{said}");
    // A backup goes to the engine's process (it alone can hold the engine still).
    let backups = dir.path().join("backups");
    let out = ok(&["backup", backups.to_str().unwrap(), "--config", c]);
    assert!(out.contains("asking the running exchange"), "{out}");

    for child in children.iter_mut().skip(1).chain([&mut gateway, &mut engine]) {
        let process = child.0.as_mut().unwrap();
        terminate(process.id());
        assert!(process.wait().unwrap().success());
    }
}
