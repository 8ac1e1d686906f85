//! The shipped nginx site (`deploy/nginx/bourse.conf`) in front of a running bourse: `nginx -t`
//! accepts it without a warning, and through it REST answers over TLS (with nginx's request id
//! passed on), plain HTTP is redirected to HTTPS, a WebSocket upgrades and streams, and a burst
//! over the API's rate limit is answered 429. The test rewrites only what a machine-specific
//! install would: ports, certificate paths and the upstream address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend};
use std::path::{Path, PathBuf};
use std::process::Command;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn repo() -> PathBuf {
    // At run time: a build cache filled from another checkout keeps that checkout's path in
    // `env!`.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../..")
}

fn curl(args: &[&str]) -> String {
    let out =
        Command::new("curl").args(["-sk", "--max-time", "10"]).args(args).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The site with this machine's ports, a self-signed certificate and the app as upstream, in
/// an nginx prefix directory of its own.
fn prefix(dir: &Path, app_port: u16, http: u16, https: u16) -> PathBuf {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let site = std::fs::read_to_string(repo().join("deploy/nginx/bourse.conf")).unwrap();
    let site: String = site
        .lines()
        // The machine may have no IPv6 loopback.
        .filter(|l| !l.contains("listen [::]"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("listen 80;", &format!("listen 127.0.0.1:{http};"))
        .replace("listen 443 ssl", &format!("listen 127.0.0.1:{https} ssl"))
        .replace("server 127.0.0.1:8080;", &format!("server 127.0.0.1:{app_port};"))
        .replace(
            "/etc/letsencrypt/live/exchange.example.com/fullchain.pem",
            &dir.join("cert.pem").display().to_string(),
        )
        .replace(
            "/etc/letsencrypt/live/exchange.example.com/privkey.pem",
            &dir.join("key.pem").display().to_string(),
        );
    std::fs::write(dir.join("bourse.conf"), site).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let main = "pid nginx.pid;\nerror_log logs/error.log;\nevents {}\nhttp {\n    access_log logs/access.log;\n    client_body_temp_path tmp_body;\n    proxy_temp_path tmp_proxy;\n    include bourse.conf;\n}\n";
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    dir.to_path_buf()
}

// Multi-threaded: `curl` runs blocking on one thread while the server answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_nginx_site_proxies_rest_websocket_and_limits_rate() {
    let app = App::spawn_with(Backend::Sqlite, &[("BOURSE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let app_port: u16 = app.url.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (http, https) = (free_port(), free_port());
    let root = prefix(dir.path(), app_port, http, https);
    let mut prefix_arg = root.display().to_string();
    prefix_arg.push('/');

    // `nginx -t`: valid, and not a single warning.
    let test = Command::new("nginx")
        .args(["-t", "-e", "stderr", "-p", &prefix_arg, "-c", "nginx.conf"])
        .output()
        .expect("nginx is not installed (scripts/test installs nginx-light)");
    let said = String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success() && !said.contains("[warn]"), "{said}");

    let mut nginx = tokio::process::Command::new("nginx")
        .args([
            "-e",
            "stderr",
            "-p",
            &prefix_arg,
            "-c",
            "nginx.conf",
            "-g",
            "daemon off; master_process off;",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("https://127.0.0.1:{https}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let said = curl(&["-i", &format!("{base}/health")]);
        if said.contains("alive") {
            break;
        }
        let log = std::fs::read_to_string(root.join("logs/error.log")).unwrap_or_default();
        assert!(std::time::Instant::now() < deadline, "nginx did not come up: {said}\n{log}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // REST over TLS, with nginx's request id passed to bourse and echoed back.
    let head = curl(&["-i", &format!("{base}/api/v1/time")]);
    assert!(head.starts_with("HTTP/2 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    let id = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("x-request-id: ").map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{head}"));
    assert_eq!(id.len(), 32, "nginx's $request_id: {head}");
    let markets = curl(&[&format!("{base}/api/v3/exchangeInfo")]);
    assert!(markets.contains("BTCUSDT"), "{markets}");
    // Plain HTTP goes to HTTPS.
    let redirect = curl(&["-i", &format!("http://127.0.0.1:{http}/markets")]);
    assert!(
        redirect.starts_with("HTTP/1.1 301") && redirect.contains("Location: https://"),
        "{redirect}"
    );

    // A WebSocket through nginx's TLS: a Binance control message and its answer.
    let script = format!(
        "import asyncio, aiohttp, json\nasync def main():\n    async with aiohttp.ClientSession() as s:\n        async with s.ws_connect('wss://127.0.0.1:{https}/ws/0', ssl=False) as ws:\n            await ws.send_str(json.dumps({{'method': 'SUBSCRIBE', 'params': ['btcusdt@trade'], 'id': 7}}))\n            print(await ws.receive_str())\nasyncio.run(main())\n"
    );
    let out = tokio::process::Command::new("python3").args(["-c", &script]).output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("\"id\":7") && said.contains("\"result\":null"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A burst over 20 requests a second (40 more allowed at once) from one address: nginx
    // answers 429 before bourse sees them.
    let mut codes = Vec::new();
    for _ in 0..80 {
        codes.push(curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/api/v1/time"),
        ]));
    }
    assert!(codes.iter().any(|c| c == "429"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "200"), "{codes:?}");
    nginx.kill().await.unwrap();
}
