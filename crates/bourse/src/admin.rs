//! `bourse admin create --email E [--role R]`: adds an admin of the admin app. Prompts for
//! the password (twice, without echo, on a terminal; one line of standard input otherwise),
//! then prints the `otpauth://` URL of the admin's TOTP secret and its QR code, to scan with an
//! authenticator app: the admin app asks for a code at every login. Needs only the database,
//! so it runs while the exchange does.

use crate::serve::{ServeArgs, load_config};
use anyhow::{Context, Result};
use bourse_store::AdminRole;
use std::io::{BufRead, IsTerminal, Write};

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub email: String,
    /// `viewer`, `operator` or `superadmin`.
    #[arg(long, default_value = "operator")]
    pub role: String,
    #[command(flatten)]
    pub serve: ServeArgs,
}

pub fn create(args: &CreateArgs) -> Result<()> {
    let role = AdminRole::from_name(&args.role)
        .with_context(|| format!("no role {:?}: use viewer, operator or superadmin", args.role))?;
    let config = load_config(&args.serve)?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!("cannot create the data directory {}", config.data_dir.display())
    })?;
    let password = read_password()?;
    let keys = bourse_server::crypto::Keys::derive(
        &hex::decode(config.secret_key.expose()).context("secret_key must be hex")?,
    );
    let issuer = config.public_url().split("://").nth(1).unwrap_or("bourse").to_string();
    let issuer = issuer.split('/').next().unwrap_or("bourse").to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let created = rt.block_on(async {
        let store = bourse_store::connect(config.database_url().expose())
            .await
            .context("cannot open the database")?;
        store.migrate().await.context("cannot migrate the database")?;
        let created = bourse_server::admin::create_admin(
            store.as_ref(),
            &keys,
            &args.email,
            &password,
            role,
            &issuer,
        )
        .await
        .map_err(anyhow::Error::msg);
        store.close().await;
        created
    })?;
    println!("admin {} ({}, {}) created.", created.id, created.email, role.as_str());
    println!(
        "Scan this with an authenticator app; the admin app asks for its code at every login:"
    );
    println!();
    println!("{}", bourse_server::admin::terminal_qr(&created.otpauth_uri));
    println!("{}", created.otpauth_uri);
    println!();
    println!("The admin app: {}", config.admin.public_url());
    Ok(())
}

/// The new admin's password: asked twice without echo on a terminal, or one line of standard
/// input (scripts, tests).
fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("cannot read the password")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = prompt("Password for the new admin: ")?;
    let second = prompt("Again: ")?;
    anyhow::ensure!(first == second, "the two passwords differ");
    Ok(first)
}

/// Reads a line from the terminal with echo off.
fn prompt(text: &str) -> Result<String> {
    eprint!("{text}");
    std::io::stderr().flush()?;
    let echo = Echo::off();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Terminal echo off while it lives.
struct Echo(Option<libc::termios>);

#[allow(unsafe_code)]
impl Echo {
    fn off() -> Echo {
        // SAFETY: tcgetattr/tcsetattr on standard input with a zeroed, then filled, termios.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return Echo(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return Echo(None);
            }
            Echo(Some(saved))
        }
    }
}

#[allow(unsafe_code)]
impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the attributes read in `off`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
    }
}
