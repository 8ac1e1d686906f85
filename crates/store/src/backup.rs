//! Online, consistent backups of the database, and their restore.
//!
//! A backup has two steps. [`crate::Store::backup_begin`] fixes a read snapshot of the whole
//! database and returns at once (the exchange pauses its writers around it, so it must be
//! quick); [`DatabaseBackup::finish`] then writes that snapshot to the file while the exchange
//! keeps writing. The file holds exactly the database as it was when `backup_begin` returned.
//!
//! - SQLite: a dedicated connection opens the new backup file as its main database, attaches the
//!   live database (which must be in WAL mode) and begins a read transaction on it; its first
//!   read fixes the snapshot (WAL keeps it, whatever is committed later). `finish` creates the
//!   tables in the backup file from the snapshot's schema, copies every row (and the
//!   AUTOINCREMENT counters, and `user_version`), then creates the indexes, triggers and views,
//!   all in one transaction, and checks the result (`PRAGMA integrity_check`). The file is a
//!   plain SQLite database (rollback journal, not WAL). Until `finish` returns, the live
//!   database's WAL cannot be checkpointed past the snapshot, so it grows with what is written
//!   meanwhile (and shrinks again at the next checkpoint after).
//! - PostgreSQL: a dedicated connection begins a `REPEATABLE READ READ ONLY` transaction and
//!   exports its snapshot (`pg_export_snapshot()`); `finish` runs `pg_dump --snapshot` on it
//!   (custom format) while that transaction stays open.
//!
//! [`restore_database`] puts a backup file into a new database: a new SQLite file, or an empty
//! PostgreSQL database (`pg_restore`).
//!
//! `pg_dump` and `pg_restore` must be at least as new as the server: the one of the server's
//! major version under `/usr/lib/postgresql/N/bin` (Debian's layout) is preferred, else the one
//! on `PATH`. They never see the password on their command line: it goes in `PGPASSWORD`.

use crate::{Result, StoreError};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection, Row};
use sqlx::{SqliteConnection, raw_sql};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

/// The format of a database backup file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatabaseFormat {
    /// A SQLite database file (restored by copying it).
    Sqlite,
    /// A PostgreSQL dump in `pg_dump`'s custom format (restored by `pg_restore`).
    PgDump,
}

impl DatabaseFormat {
    /// `"sqlite"` or `"pg_dump"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseFormat::Sqlite => "sqlite",
            DatabaseFormat::PgDump => "pg_dump",
        }
    }

    /// The format [`DatabaseFormat::as_str`] names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sqlite" => Some(DatabaseFormat::Sqlite),
            "pg_dump" => Some(DatabaseFormat::PgDump),
            _ => None,
        }
    }
}

impl fmt::Display for DatabaseFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A started backup: the snapshot is fixed; `finish` writes it.
///
/// Dropping it unfinished ends the snapshot and removes the file; so does a `finish` that
/// fails.
#[async_trait::async_trait]
pub trait DatabaseBackup: Send + fmt::Debug {
    /// Writes the snapshot to the file given to [`crate::Store::backup_begin`] (durably: the
    /// file is synced before this returns) and ends the snapshot. May take long; the database
    /// stays writable meanwhile. Returns the format of the file.
    async fn finish(self: Box<Self>) -> Result<DatabaseFormat>;
}

/// Restores the backup `file` (of `format`) into the database `url`:
///
/// - [`DatabaseFormat::Sqlite`]: `url` is `sqlite://PATH` (any form [`crate::connect`]
///   accepts) and PATH must not exist (`Invalid` otherwise). The file is copied to
///   `PATH.partial`, synced, checked with `PRAGMA integrity_check` (`Damaged` if it does not
///   answer `ok`, or SQLite cannot open it) and only then renamed to PATH: on any error nothing
///   is left at PATH.
/// - [`DatabaseFormat::PgDump`]: `url` is a `postgres://` URL of an existing, empty database
///   (`Invalid` if its schema `public` holds any table, view or sequence); `pg_restore` restores
///   it in a single transaction (`Tool`, with the end of its stderr, if it fails: nothing is
///   restored).
///
/// A format that does not fit the URL is `Invalid`. The restored database holds its migration
/// history: [`crate::Store::migrate`] applies only migrations newer than the backup.
pub async fn restore_database(format: DatabaseFormat, file: &Path, url: &str) -> Result<()> {
    let sqlite = url.starts_with("sqlite:");
    let postgres = url.starts_with("postgres:") || url.starts_with("postgresql:");
    if !sqlite && !postgres {
        return Err(StoreError::BadUrl(url.split(':').next().unwrap_or("").to_string()));
    }
    match format {
        DatabaseFormat::Sqlite if !sqlite => Err(StoreError::Invalid(
            "this backup holds a SQLite database; restore it to a sqlite:// URL".into(),
        )),
        DatabaseFormat::PgDump if !postgres => Err(StoreError::Invalid(
            "this backup holds a PostgreSQL dump (pg_dump); restore it to a postgres:// URL \
             of an empty database"
                .into(),
        )),
        _ => {
            match std::fs::metadata(file) {
                Ok(m) if m.is_file() => {}
                Ok(_) => {
                    return Err(StoreError::Invalid(format!(
                        "the backup {} is not a file",
                        file.display()
                    )));
                }
                Err(e) => return Err(io_error(format!("reading {}", file.display()), e)),
            }
            match format {
                DatabaseFormat::Sqlite => restore_sqlite(file, url).await,
                DatabaseFormat::PgDump => restore_postgres(file, url).await,
            }
        }
    }
}

// ---- files ------------------------------------------------------------------------------------

fn io_error(action: String, source: std::io::Error) -> StoreError {
    StoreError::Io { action, source }
}

/// `path` with `suffix` appended to its file name (`db.sqlite` → `db.sqlite-journal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `path` as a new, empty file; `Invalid` (saying `why` it must not exist) if anything
/// exists there.
fn create_new(path: &Path, why: &str) -> Result<()> {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(StoreError::Invalid(format!("{} exists already: {why}", path.display())))
        }
        Err(e) => Err(io_error(format!("creating {}", path.display()), e)),
    }
}

/// Syncs the file at `path` and the directory that holds it (so a rename or a creation is
/// durable too).
fn sync_file_and_dir(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path)
        .map_err(|e| io_error(format!("opening {}", path.display()), e))?;
    file.sync_all().map_err(|e| io_error(format!("syncing {}", path.display()), e))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::File::open(dir)
        .map_err(|e| io_error(format!("opening directory {}", dir.display()), e))?;
    dir.sync_all().map_err(|e| io_error("syncing the directory".into(), e))
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        io_error("a file operation did not complete".into(), std::io::Error::other(e))
    })?
}

/// Files to remove when dropped, unless [`RemoveOnDrop::keep`] was called: what a backup or a
/// restore that failed (or was dropped half way) leaves behind.
#[derive(Debug)]
struct RemoveOnDrop {
    paths: Vec<PathBuf>,
}

impl RemoveOnDrop {
    /// `path` and SQLite's files beside it (journal, WAL, shared memory).
    fn sqlite(path: &Path) -> Self {
        let mut paths = vec![path.to_path_buf()];
        paths.extend(["-journal", "-wal", "-shm"].map(|s| with_suffix(path, s)));
        RemoveOnDrop { paths }
    }

    fn file(path: &Path) -> Self {
        RemoveOnDrop { paths: vec![path.to_path_buf()] }
    }

    /// Keeps the files.
    fn keep(&mut self) {
        self.paths.clear();
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.paths {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove"),
            }
        }
    }
}

// ---- SQLite -----------------------------------------------------------------------------------

/// The schema name the live database is attached under, on the backup file's connection.
const LIVE: &str = "live";

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An object of the live database's schema, as of the snapshot.
#[derive(Debug)]
struct SchemaObject {
    kind: String,
    name: String,
    sql: Option<String>,
}

impl SchemaObject {
    /// Created by SQLite itself (`sqlite_sequence`, automatic indexes, statistics).
    fn internal(&self) -> bool {
        self.name.starts_with("sqlite_")
    }
}

/// Options for a dedicated connection: no foreign-key enforcement (rows are copied in any
/// order), no journal mode forced (a new file keeps SQLite's rollback journal; the live file
/// stays in WAL), the store's busy timeout.
fn dedicated(filename: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(filename)
        .create_if_missing(false)
        .foreign_keys(false)
        .busy_timeout(Duration::from_secs(5))
}

/// The live database's file, refusing what cannot be backed up by attaching it.
fn live_file(live: &SqliteConnectOptions) -> Result<PathBuf> {
    let file = live.get_filename();
    let name = file.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return Err(StoreError::Invalid("an in-memory SQLite database cannot be backed up".into()));
    }
    if !file.is_file() {
        return Err(StoreError::Invalid(format!(
            "the SQLite database {} is not a file",
            file.display()
        )));
    }
    Ok(file.to_path_buf())
}

/// Starts a backup of the SQLite database `live` to `path`; see the module documentation.
pub(crate) async fn sqlite_begin(
    live: &SqliteConnectOptions,
    path: &Path,
) -> Result<Box<dyn DatabaseBackup>> {
    let live = live_file(live)?;
    let Some(live_name) = live.to_str() else {
        return Err(StoreError::Invalid(format!(
            "the SQLite database path {} is not UTF-8",
            live.display()
        )));
    };
    for suffix in ["-journal", "-wal"] {
        let side = with_suffix(path, suffix);
        if std::fs::symlink_metadata(&side).is_ok() {
            return Err(StoreError::Invalid(format!(
                "{} exists already: remove it or back up to another path",
                side.display()
            )));
        }
    }
    create_new(path, "a backup never overwrites a file")?;
    let files = RemoveOnDrop::sqlite(path);
    let mut conn = SqliteConnection::connect_with(&dedicated(path)).await?;
    sqlx::query(AssertSqlSafe(format!("ATTACH DATABASE $1 AS {LIVE}")))
        .bind(live_name)
        .persistent(false)
        .execute(&mut conn)
        .await?;
    let row = sqlx::query(AssertSqlSafe(format!("PRAGMA {LIVE}.journal_mode")))
        .persistent(false)
        .fetch_one(&mut conn)
        .await?;
    let mode: String = row.try_get(0)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid(format!(
            "the SQLite database {} is in journal mode {mode}, not WAL: a backup would block \
             its writers",
            live.display()
        )));
    }
    conn.execute("BEGIN").await?;
    // The transaction's first read of the live database fixes its snapshot (WAL keeps it for
    // this connection whatever is committed later), and reads the schema as of that snapshot.
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT type, name, sql FROM {LIVE}.sqlite_master ORDER BY rowid"
    )))
    .persistent(false)
    .fetch_all(&mut conn)
    .await?;
    let schema = rows.iter().map(schema_object).collect::<Result<Vec<_>>>()?;
    Ok(Box::new(SqliteBackup { conn, schema, path: path.to_path_buf(), files }))
}

fn schema_object(row: &SqliteRow) -> Result<SchemaObject> {
    Ok(SchemaObject {
        kind: row.try_get("type")?,
        name: row.try_get("name")?,
        sql: row.try_get("sql")?,
    })
}

/// A SQLite backup whose snapshot is fixed: its connection is in a read transaction of the
/// live database.
struct SqliteBackup {
    conn: SqliteConnection,
    schema: Vec<SchemaObject>,
    path: PathBuf,
    files: RemoveOnDrop,
}

impl fmt::Debug for SqliteBackup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackup").field("path", &self.path).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl DatabaseBackup for SqliteBackup {
    async fn finish(self: Box<Self>) -> Result<DatabaseFormat> {
        let SqliteBackup { mut conn, schema, path, mut files } = *self;
        let written = write_snapshot(&mut conn, &schema).await;
        // After an error this rolls the transaction back; then `files` is dropped on return,
        // which removes the file.
        let closed = conn.close().await;
        written?;
        closed?;
        let synced = path.clone();
        blocking(move || sync_file_and_dir(&synced)).await?;
        files.keep();
        Ok(DatabaseFormat::Sqlite)
    }
}

/// Writes the snapshot into the backup file, ends the snapshot's transaction and checks the
/// file.
async fn write_snapshot(conn: &mut SqliteConnection, schema: &[SchemaObject]) -> Result<()> {
    copy_snapshot(conn, schema).await?;
    conn.execute("COMMIT").await?;
    conn.execute(AssertSqlSafe(format!("DETACH DATABASE {LIVE}"))).await?;
    integrity_check(conn).await
}

/// Inside the snapshot's transaction, writes the snapshot into the connection's main database
/// (the new, empty backup file).
async fn copy_snapshot(conn: &mut SqliteConnection, schema: &[SchemaObject]) -> Result<()> {
    let tables: Vec<&SchemaObject> =
        schema.iter().filter(|o| o.kind == "table" && !o.internal()).collect();
    for table in &tables {
        if let Some(sql) = &table.sql {
            raw_sql(AssertSqlSafe(sql.clone())).execute(&mut *conn).await?;
        }
    }
    for table in &tables {
        // Every stored column, in order: generated ones (hidden 2 and 3) are computed again.
        let rows = sqlx::query(
            "SELECT name FROM pragma_table_xinfo($1, $2) WHERE hidden = 0 ORDER BY cid",
        )
        .bind(table.name.as_str())
        .bind(LIVE)
        .fetch_all(&mut *conn)
        .await?;
        let columns = rows
            .iter()
            .map(|r| r.try_get::<String, _>("name").map(|c| quote(&c)))
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
        if columns.is_empty() {
            continue;
        }
        let name = quote(&table.name);
        raw_sql(AssertSqlSafe(format!(
            "INSERT INTO main.{name} ({columns}) SELECT {columns} FROM {LIVE}.{name}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    // AUTOINCREMENT counters, which may be above every id left (after a delete).
    let live_sequence = schema.iter().any(|o| o.kind == "table" && o.name == "sqlite_sequence");
    let main_sequence = sqlx::query(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
    )
    .fetch_optional(&mut *conn)
    .await?
    .is_some();
    if live_sequence && main_sequence {
        raw_sql(AssertSqlSafe(format!(
            "DELETE FROM main.sqlite_sequence; INSERT INTO main.sqlite_sequence (name, seq) \
             SELECT name, seq FROM {LIVE}.sqlite_sequence"
        )))
        .execute(&mut *conn)
        .await?;
    }
    // Indexes, triggers and views after the rows (triggers must not fire on the copy), in the
    // order they were created (a trigger may name a view).
    for object in schema.iter().filter(|o| o.kind != "table" && !o.internal()) {
        if let Some(sql) = &object.sql {
            raw_sql(AssertSqlSafe(sql.clone())).execute(&mut *conn).await?;
        }
    }
    for pragma in ["user_version", "application_id"] {
        let row = sqlx::query(AssertSqlSafe(format!("PRAGMA {LIVE}.{pragma}")))
            .persistent(false)
            .fetch_one(&mut *conn)
            .await?;
        let value: i64 = row.try_get(0)?;
        conn.execute(AssertSqlSafe(format!("PRAGMA main.{pragma} = {value}"))).await?;
    }
    Ok(())
}

/// `PRAGMA integrity_check` of the connection's main database; `Damaged` unless it answers
/// `ok`.
async fn integrity_check(conn: &mut SqliteConnection) -> Result<()> {
    let rows = sqlx::query("PRAGMA main.integrity_check").fetch_all(&mut *conn).await?;
    let answers = rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, _>>()?;
    if answers.len() == 1 && answers.first().is_some_and(|a| a == "ok") {
        return Ok(());
    }
    let mut message = answers.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
    if answers.len() > 5 {
        message.push_str(&format!("; and {} more", answers.len() - 5));
    }
    Err(StoreError::Damaged(message))
}

async fn restore_sqlite(file: &Path, url: &str) -> Result<()> {
    let options = SqliteConnectOptions::from_str(url)?;
    let target = options.get_filename().to_path_buf();
    let name = target.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return Err(StoreError::Invalid(format!(
            "{url} is not a database file: restore a SQLite backup to sqlite://PATH"
        )));
    }
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if exists(&target) {
        return Err(StoreError::Invalid(format!(
            "{} exists already: restore to a new path (a restore never overwrites a database)",
            target.display()
        )));
    }
    let partial = with_suffix(&target, ".partial");
    for side in ["-journal", "-wal"].map(|s| with_suffix(&partial, s)) {
        if exists(&side) {
            return Err(StoreError::Invalid(format!(
                "{} exists: another restore is running, or one was interrupted (remove it)",
                side.display()
            )));
        }
    }
    create_new(
        &partial,
        "another restore to this path is running, or one was interrupted (remove it)",
    )?;
    let files = RemoveOnDrop::sqlite(&partial);
    let (from, to) = (file.to_path_buf(), partial.clone());
    blocking(move || {
        let mut source = std::fs::File::open(&from)
            .map_err(|e| io_error(format!("opening {}", from.display()), e))?;
        let mut copy = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&to)
            .map_err(|e| io_error(format!("opening {}", to.display()), e))?;
        std::io::copy(&mut source, &mut copy)
            .map_err(|e| io_error(format!("copying {} to {}", from.display(), to.display()), e))?;
        copy.sync_all().map_err(|e| io_error(format!("syncing {}", to.display()), e))
    })
    .await?;
    check_sqlite_file(&partial).await?;
    if exists(&target) {
        return Err(StoreError::Invalid(format!(
            "{} appeared during the restore: nothing was restored",
            target.display()
        )));
    }
    let (from, to) = (partial.clone(), target.clone());
    blocking(move || {
        std::fs::rename(&from, &to)
            .map_err(|e| io_error(format!("renaming {} to {}", from.display(), to.display()), e))?;
        sync_file_and_dir(&to)
    })
    .await?;
    // The partial file is the target now; its side files, if any, are stale.
    drop(files);
    Ok(())
}

/// Opens the SQLite file at `path` and checks it; `Damaged` if SQLite refuses it.
async fn check_sqlite_file(path: &Path) -> Result<()> {
    let damaged = |e: sqlx::Error| StoreError::Damaged(e.to_string());
    let mut conn = SqliteConnection::connect_with(&dedicated(path)).await.map_err(damaged)?;
    let checked = match integrity_check(&mut conn).await {
        Err(StoreError::Database(e)) => Err(damaged(e)),
        other => other,
    };
    conn.close().await?;
    checked
}

// ---- PostgreSQL -------------------------------------------------------------------------------

/// How `pg_dump` and `pg_restore` reach a database: a connection URI without the password
/// (safe on a command line) and the password (for `PGPASSWORD`; `None`: whatever the
/// environment or `~/.pgpass` gives them).
struct PgTarget {
    uri: String,
    password: Option<String>,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("uri", &self.uri)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl PgTarget {
    fn new(options: &PgConnectOptions) -> Result<Self> {
        let mut url = options.to_url_lossy();
        let password = url.password().map(percent_decode).transpose()?;
        // Cannot fail: the URL has a host.
        let _ = url.set_password(None);
        // libpq refuses parameters it does not know; this one is sqlx's own.
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "statement-cache-capacity")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        Ok(PgTarget { uri: url.to_string(), password })
    }
}

/// Decodes `%XX` escapes (a URL's password).
fn percent_decode(s: &str) -> Result<String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let high = bytes.get(i + 1).copied().and_then(hex);
            let low = bytes.get(i + 2).copied().and_then(hex);
            if let (Some(high), Some(low)) = (high, low) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| StoreError::Invalid("the database password is not UTF-8".into()))
}

/// The server's version number (`SHOW server_version_num`, e.g. 150004), if it answers one.
async fn server_version(conn: &mut PgConnection) -> Result<Option<i64>> {
    let row = sqlx::query("SHOW server_version_num").fetch_one(&mut *conn).await?;
    let text: String = row.try_get(0)?;
    Ok(text.trim().parse().ok())
}

/// The PostgreSQL tool `name` for a server of `version` (`server_version_num`): the one of the
/// server's major version under `/usr/lib/postgresql` if it is there, else `name` on `PATH`.
fn pg_tool(name: &str, version: Option<i64>) -> PathBuf {
    if let Some(v) = version {
        let major = if v >= 100_000 {
            (v / 10_000).to_string()
        } else {
            format!("{}.{}", v / 10_000, v / 100 % 100)
        };
        let path = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/{name}"));
        if path.is_file() {
            return path;
        }
    }
    PathBuf::from(name)
}

/// The last lines of a tool's stderr, at most 20 lines and 2000 characters.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.get(lines.len().saturating_sub(20)..).unwrap_or(&[]).join("\n");
    let chars = last.chars().count();
    if chars <= 2000 {
        last
    } else {
        format!("…{}", last.chars().skip(chars - 2000).collect::<String>())
    }
}

/// Runs a PostgreSQL tool with `args`, the password in `PGPASSWORD`; `Tool` with its exit
/// status and the end of its stderr if it cannot run or fails. Killed if the future is dropped.
async fn run_tool(
    tool: &'static str,
    program: &Path,
    args: Vec<OsString>,
    password: Option<&str>,
) -> Result<()> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().await.map_err(|e| StoreError::Tool {
        tool,
        message: if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} not found: install the PostgreSQL client tools of the server's version \
                 (or newer)",
                program.display()
            )
        } else {
            format!("cannot run {}: {e}", program.display())
        },
    })?;
    if output.status.success() {
        let warnings = tail(&output.stderr);
        if !warnings.is_empty() {
            tracing::warn!(tool, output = %warnings, "succeeded with warnings");
        }
        return Ok(());
    }
    let stderr = tail(&output.stderr);
    Err(StoreError::Tool {
        tool,
        message: if stderr.is_empty() {
            format!("{} exited with {}", program.display(), output.status)
        } else {
            format!("{} exited with {}: {stderr}", program.display(), output.status)
        },
    })
}

/// Starts a backup of the PostgreSQL database `options` names to `path`; see the module
/// documentation.
pub(crate) async fn postgres_begin(
    options: &PgConnectOptions,
    path: &Path,
) -> Result<Box<dyn DatabaseBackup>> {
    let target = PgTarget::new(options)?;
    create_new(path, "a backup never overwrites a file")?;
    let file = RemoveOnDrop::file(path);
    let mut conn = PgConnection::connect_with(options).await?;
    // The transaction stays idle while pg_dump reads through its snapshot.
    conn.execute("SET idle_in_transaction_session_timeout = 0").await?;
    let version = server_version(&mut conn).await?;
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    // The transaction's first statement takes its snapshot.
    let row = sqlx::query("SELECT pg_export_snapshot()").fetch_one(&mut conn).await?;
    let snapshot: String = row.try_get(0)?;
    Ok(Box::new(PgBackup { conn, snapshot, version, target, path: path.to_path_buf(), file }))
}

/// A PostgreSQL backup whose snapshot is fixed: its connection holds the transaction that
/// exported it.
struct PgBackup {
    conn: PgConnection,
    snapshot: String,
    version: Option<i64>,
    target: PgTarget,
    path: PathBuf,
    file: RemoveOnDrop,
}

impl fmt::Debug for PgBackup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBackup")
            .field("path", &self.path)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl DatabaseBackup for PgBackup {
    async fn finish(self: Box<Self>) -> Result<DatabaseFormat> {
        let PgBackup { mut conn, snapshot, version, target, path, mut file } = *self;
        let mut path_arg = OsString::from("--file=");
        path_arg.push(path.as_os_str());
        let args = vec![
            OsString::from("--format=custom"),
            OsString::from("--no-owner"),
            OsString::from("--no-privileges"),
            OsString::from("--no-password"),
            OsString::from(format!("--snapshot={snapshot}")),
            path_arg,
            OsString::from(format!("--dbname={}", target.uri)),
        ];
        // pg_dump syncs the file before it exits. The snapshot's transaction stays open
        // meanwhile: `conn` is still here.
        let dumped =
            run_tool("pg_dump", &pg_tool("pg_dump", version), args, target.password.as_deref())
                .await;
        if dumped.is_ok() {
            // pg_dump held the snapshot from its start: the dump is sound whatever happens to
            // this connection now.
            if let Err(e) = conn.execute("COMMIT").await {
                tracing::warn!(error = %e, "ending the backup's snapshot");
            }
        }
        if let Err(e) = conn.close().await {
            tracing::warn!(error = %e, "closing the backup's connection");
        }
        // On an error `file` is dropped on return, which removes the file.
        dumped?;
        file.keep();
        Ok(DatabaseFormat::PgDump)
    }
}

async fn restore_postgres(file: &Path, url: &str) -> Result<()> {
    let options = PgConnectOptions::from_str(url)?;
    let target = PgTarget::new(&options)?;
    let mut conn = PgConnection::connect_with(&options).await?;
    let row = sqlx::query(
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
         WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
    )
    .fetch_one(&mut conn)
    .await?;
    let objects: i64 = row.try_get("n")?;
    let version = server_version(&mut conn).await?;
    conn.close().await?;
    if objects > 0 {
        return Err(StoreError::Invalid(format!(
            "the database {} is not empty ({objects} tables, views or sequences in schema \
             public): restore into a new, empty database",
            options.get_database().unwrap_or("(default)")
        )));
    }
    let args = vec![
        OsString::from("--no-owner"),
        OsString::from("--no-privileges"),
        OsString::from("--exit-on-error"),
        OsString::from("--single-transaction"),
        OsString::from("--no-password"),
        OsString::from(format!("--dbname={}", target.uri)),
        file.as_os_str().to_os_string(),
    ];
    run_tool("pg_restore", &pg_tool("pg_restore", version), args, target.password.as_deref()).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_round_trip() {
        for f in [DatabaseFormat::Sqlite, DatabaseFormat::PgDump] {
            assert_eq!(DatabaseFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(DatabaseFormat::parse("tar"), None);
    }

    #[test]
    fn percent_decodes() {
        assert_eq!(percent_decode("p%40ss%2Fw%3Ard").unwrap(), "p@ss/w:rd");
        assert_eq!(percent_decode("100%").unwrap(), "100%");
        assert_eq!(percent_decode("%zz").unwrap(), "%zz");
    }

    #[test]
    fn targets_keep_the_password_off_the_uri() {
        let url = "postgres://bob:s%40cret@db.example:5433/ex?sslmode=require";
        let target = PgTarget::new(&PgConnectOptions::from_str(url).unwrap()).unwrap();
        assert_eq!(target.password.as_deref(), Some("s@cret"));
        let uri = target.uri.as_str();
        assert!(!uri.contains("cret"), "{uri}");
        assert!(uri.starts_with("postgres://bob@db.example:5433/ex?"), "{uri}");
        assert!(uri.contains("sslmode=require"), "{uri}");
        assert!(!uri.contains("statement-cache-capacity"), "{uri}");
        assert!(!format!("{target:?}").contains("cret"));
    }

    #[test]
    fn tools_of_old_servers() {
        assert_eq!(pg_tool("pg_dump", None), PathBuf::from("pg_dump"));
        assert_eq!(pg_tool("pg_dump", Some(90_624)), PathBuf::from("pg_dump"));
    }

    #[test]
    fn tails_are_short() {
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = tail(long.as_bytes());
        assert!(t.starts_with("line 80\n") && t.ends_with("line 99"), "{t}");
        assert_eq!(tail(b"\n\n"), "");
    }
}
