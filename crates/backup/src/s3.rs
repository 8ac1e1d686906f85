//! An S3-compatible bucket as a backup destination: requests signed with AWS Signature V4 in
//! the `Authorization` header (`sigv4.rs`), sent with `ureq` on the blocking pool; answers
//! parsed with `rusty-s3`. Files above
//! [`PART_BYTES`] go up in parts (multipart upload), so no object size limit applies and
//! memory stays bounded.

use crate::error::{BackupError, IoAt};
use crate::sigv4::{Signer, canonical_query, uri_encode};
use bourse_core::Secret;
use jiff::Timestamp;
use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Part size of multipart uploads, and the largest file sent in one request (default).
pub const PART_BYTES: usize = 32 << 20;
/// S3's smallest part (but the last).
const PART_BYTES_MIN: usize = 5 << 20;
/// Error bodies read at most.
const ERROR_BODY_MAX: u64 = 16 << 10;

/// Where the bucket is and who we are to it. Read from `[backup]` settings or the usual AWS
/// environment variables.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`, ...
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Secret,
    /// Path-style URLs (`endpoint/bucket/key`), which every S3-compatible server takes;
    /// `false` for virtual-hosted style (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Files above this go up in parts of this size ([`PART_BYTES`]; at least 5 MiB).
    pub part_bytes: usize,
}

impl S3Settings {
    /// From `AWS_ENDPOINT_URL`, `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`; `None` without keys.
    pub fn from_env() -> Option<S3Settings> {
        S3Settings::resolve(None, None, None, None, true)
    }

    /// Each value given, else its AWS environment variable (as [`S3Settings::from_env`]), else
    /// AWS itself in `us-east-1`; `None` without an access key and a secret.
    pub fn resolve(
        endpoint: Option<String>,
        region: Option<String>,
        access_key: Option<String>,
        secret_key: Option<Secret>,
        path_style: bool,
    ) -> Option<S3Settings> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(S3Settings {
            endpoint: endpoint
                .or_else(|| var("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|| "https://s3.amazonaws.com".to_string()),
            region: region
                .or_else(|| var("AWS_REGION"))
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_string()),
            access_key: access_key.or_else(|| var("AWS_ACCESS_KEY_ID"))?,
            secret_key: secret_key.or_else(|| var("AWS_SECRET_ACCESS_KEY").map(Secret::new))?,
            path_style,
            part_bytes: PART_BYTES,
        })
    }
}

/// One bucket and key prefix.
#[derive(Debug)]
pub struct S3 {
    /// `scheme://host[:port]`.
    origin: String,
    /// The `Host` header (and what is signed as it).
    host: String,
    /// The path before the key: `/BUCKET/` (path style) or `/` (virtual-hosted).
    base_path: String,
    region: String,
    access_key: String,
    secret_key: Secret,
    /// Empty or ending in `/`.
    prefix: String,
    part_bytes: usize,
    agent: ureq::Agent,
    display: String,
}

impl S3 {
    /// `s3://BUCKET[/PREFIX]`.
    pub fn open(url: &str, settings: &S3Settings) -> Result<S3, BackupError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| BackupError::Usage(format!("not an s3:// URL: {url}")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(BackupError::Usage(format!("not a bucket name in {url}: {bucket:?}")));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        let endpoint = url::Url::parse(&settings.endpoint).map_err(|e| {
            BackupError::Usage(format!("bad S3 endpoint {:?}: {e}", settings.endpoint))
        })?;
        let (Some(host), "http" | "https") = (endpoint.host_str(), endpoint.scheme()) else {
            return Err(BackupError::Usage(format!(
                "the S3 endpoint must be http(s)://HOST[:PORT]: {:?}",
                settings.endpoint
            )));
        };
        let host = if settings.path_style { host.to_string() } else { format!("{bucket}.{host}") };
        let host = match endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let base_path = if settings.path_style {
            format!("/{}/", uri_encode(bucket, false))
        } else {
            "/".into()
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_send_body(Some(Duration::from_secs(600)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_recv_body(Some(Duration::from_secs(600)))
            .user_agent("bourse")
            .build()
            .into();
        Ok(S3 {
            origin: format!("{}://{host}", endpoint.scheme()),
            host,
            base_path,
            region: settings.region.clone(),
            access_key: settings.access_key.clone(),
            secret_key: settings.secret_key.clone(),
            prefix,
            part_bytes: settings.part_bytes.max(PART_BYTES_MIN),
            agent,
            display: url.trim_end_matches('/').to_string(),
        })
    }

    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// One signed request for `key` (already with the prefix; empty for the bucket itself).
    fn send(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer, BackupError> {
        let path = format!("{}{}", self.base_path, uri_encode(key, true));
        let query = canonical_query(query);
        let signer = Signer {
            access_key: &self.access_key,
            secret_key: self.secret_key.expose(),
            region: &self.region,
        };
        let headers = signer.headers(method, &self.host, &path, &query, Timestamp::now());
        let url = if query.is_empty() {
            format!("{}{path}", self.origin)
        } else {
            format!("{}{path}?{query}", self.origin)
        };
        let request = ureq::http::Request::builder().method(method).uri(&url);
        let request = headers.iter().fold(request, |r, (name, value)| r.header(*name, value));
        let answer = match body {
            Some(body) => {
                let request = request.body(body).map_err(|e| BackupError::S3(e.to_string()))?;
                self.agent.run(request)
            }
            None => {
                let request = request.body(()).map_err(|e| BackupError::S3(e.to_string()))?;
                self.agent.run(request)
            }
        };
        answer.map_err(|e| BackupError::S3(format!("cannot reach the bucket: {e}")))
    }

    fn key(&self, relative: &str) -> String {
        format!("{}{relative}", self.prefix)
    }

    /// Uploads a file to `relative` (under the prefix): one request, or a multipart upload
    /// above the part size.
    pub fn put_file(&self, relative: &str, path: &Path) -> Result<(), BackupError> {
        let key = self.key(relative);
        let len = std::fs::metadata(path).at(path)?.len();
        let mut file = File::open(path).at(path)?;
        if len <= self.part_bytes as u64 {
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut bytes).at(path)?;
            let answer = self.send("PUT", &key, &[], Some(&bytes))?;
            return expect_ok(answer, "PUT", &key).map(drop);
        }
        self.put_multipart(&key, &mut file, path)
    }

    fn put_multipart(&self, key: &str, file: &mut File, path: &Path) -> Result<(), BackupError> {
        let answer = self.send("POST", key, &[("uploads", "")], Some(&[]))?;
        let mut answer = expect_ok(answer, "POST uploads", key)?;
        let text = read_text(&mut answer)?;
        let created = CreateMultipartUpload::parse_response(&text).map_err(|e| {
            BackupError::S3(format!("unreadable CreateMultipartUpload answer: {e}"))
        })?;
        let upload_id = created.upload_id();
        let result = self.upload_parts(key, upload_id, file, path);
        if result.is_err() {
            let _ = self.send("DELETE", key, &[("uploadId", upload_id)], None);
        }
        result
    }

    fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &mut File,
        path: &Path,
    ) -> Result<(), BackupError> {
        let mut parts = String::from("<CompleteMultipartUpload>");
        let mut buf = vec![0u8; self.part_bytes];
        for number in 1u32..=10_000 {
            let n = read_full(file, &mut buf).at(path)?;
            if n == 0 && number > 1 {
                break;
            }
            let body = buf.get(..n).unwrap_or_default();
            let part_number = number.to_string();
            let query = [("partNumber", part_number.as_str()), ("uploadId", upload_id)];
            let answer = expect_ok(self.send("PUT", key, &query, Some(body))?, "PUT part", key)?;
            let etag =
                answer.headers().get("etag").and_then(|v| v.to_str().ok()).ok_or_else(|| {
                    BackupError::S3(format!("no ETag for part {number} of {key}"))
                })?;
            parts.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
            if n < self.part_bytes {
                break;
            }
        }
        parts.push_str("</CompleteMultipartUpload>");
        let answer = self.send("POST", key, &[("uploadId", upload_id)], Some(parts.as_bytes()))?;
        let mut answer = expect_ok(answer, "POST complete", key)?;
        // S3 may answer 200 with an error document when completion fails late.
        let text = read_text(&mut answer)?;
        if text.contains("<Error>") {
            return Err(BackupError::S3(format!("completing {key}: {}", error_text(&text))));
        }
        Ok(())
    }

    /// Downloads `relative` into `path` (created); returns the bytes written.
    pub fn get_file(&self, relative: &str, path: &Path) -> Result<u64, BackupError> {
        let key = self.key(relative);
        let answer = expect_ok(self.send("GET", &key, &[], None)?, "GET", &key)?;
        let mut file = File::create(path).at(path)?;
        let mut body = answer.into_body().into_reader();
        let bytes = std::io::copy(&mut body, &mut file)
            .map_err(|e| BackupError::S3(format!("reading {key}: {e}")))?;
        file.sync_all().at(path)?;
        Ok(bytes)
    }

    /// Downloads a small object (`None` if it does not exist).
    pub(crate) fn get_small(
        &self,
        relative: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, BackupError> {
        let key = self.key(relative);
        let answer = self.send("GET", &key, &[], None)?;
        if answer.status() == 404 {
            return Ok(None);
        }
        let mut answer = expect_ok(answer, "GET", &key)?;
        let bytes = answer
            .body_mut()
            .with_config()
            .limit(max)
            .read_to_vec()
            .map_err(|e| BackupError::S3(format!("reading {key}: {e}")))?;
        Ok(Some(bytes))
    }

    /// Keys under `relative` (relative to the prefix), with sizes; every page.
    pub(crate) fn list(&self, relative: &str) -> Result<Vec<(String, u64)>, BackupError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let full = self.key(relative);
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", full.as_str())];
            if let Some(token) = &token {
                query.push(("continuation-token", token.as_str()));
            }
            let answer = expect_ok(self.send("GET", "", &query, None)?, "LIST", &full)?;
            let mut answer = answer;
            let text = read_text(&mut answer)?;
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| BackupError::S3(format!("unreadable listing: {e}")))?;
            for object in page.contents {
                if let Some(rest) = object.key.strip_prefix(&self.prefix) {
                    out.push((rest.to_string(), object.size));
                }
            }
            match page.next_continuation_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }

    pub(crate) fn delete(&self, relative: &str) -> Result<(), BackupError> {
        let key = self.key(relative);
        expect_ok(self.send("DELETE", &key, &[], None)?, "DELETE", &key).map(drop)
    }
}

type Answer = ureq::http::Response<ureq::Body>;

/// The answer if it is a success; otherwise an error with S3's own code and message.
fn expect_ok(mut answer: Answer, what: &str, key: &str) -> Result<Answer, BackupError> {
    if answer.status().is_success() {
        return Ok(answer);
    }
    let status = answer.status();
    let text =
        answer.body_mut().with_config().limit(ERROR_BODY_MAX).read_to_string().unwrap_or_default();
    Err(BackupError::S3(format!("{what} {key} answered {status}: {}", error_text(&text))))
}

/// `Code: Message` from an S3 error document, or the start of the text.
fn error_text(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text.get(start..)?.find(&format!("</{name}>"))? + start;
        text.get(start..end)
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => text.chars().take(200).collect(),
    }
}

fn read_text(answer: &mut Answer) -> Result<String, BackupError> {
    answer
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_string()
        .map_err(|e| BackupError::S3(format!("reading an answer: {e}")))
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match file.read(rest)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
