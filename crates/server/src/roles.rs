//! Which roles a process runs (`roles` in the configuration, `bourse serve --roles`): all of
//! them by default; a split deployment runs the engine in one process and the other roles in
//! others, reaching it over the engine link (`bourse-link`, `[link]` settings).

use serde::Deserialize;
use std::net::SocketAddr;

/// The roles of DESIGN §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    /// The sequencer: journal, snapshots, the data directory's lock; backups (only its
    /// process can hold the engine still).
    pub engine: bool,
    /// The public HTTP listener: web UI, REST, Binance-compatible API, WebSockets.
    pub gateway: bool,
    /// The coin wallets: deposit scanners and withdrawal processors.
    pub wallet: bool,
    /// The projector, the mail outbox, the alert webhook, the withdrawal sweeper.
    pub worker: bool,
    /// The admin app's listener.
    pub admin: bool,
}

pub const ROLE_NAMES: [&str; 5] = ["engine", "gateway", "wallet", "worker", "admin"];

impl Default for Roles {
    fn default() -> Roles {
        Roles::ALL
    }
}

impl Roles {
    pub const ALL: Roles =
        Roles { engine: true, gateway: true, wallet: true, worker: true, admin: true };

    /// `all`, or role names separated by commas: any combination runs in one process. The
    /// processes of a deployment together run each role once (the engine and the worker exactly
    /// once: one sequencer, one projector).
    pub fn parse(text: &str) -> Result<Roles, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(Roles::ALL);
        }
        let mut roles =
            Roles { engine: false, gateway: false, wallet: false, worker: false, admin: false };
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let slot = match name.to_ascii_lowercase().as_str() {
                "engine" => &mut roles.engine,
                "gateway" => &mut roles.gateway,
                "wallet" => &mut roles.wallet,
                "worker" => &mut roles.worker,
                "admin" => &mut roles.admin,
                _ => {
                    return Err(format!(
                        "unknown role {name:?}: roles are all, {}",
                        ROLE_NAMES.join(", ")
                    ));
                }
            };
            *slot = true;
        }
        if roles.names().is_empty() {
            return Err("no roles given: name at least one, or all".into());
        }
        Ok(roles)
    }

    pub fn is_all(&self) -> bool {
        *self == Roles::ALL
    }

    /// The read side of the projector in a process without the worker: the gateway's streams
    /// and the admin app's dashboard follow the worker's commits through the store
    /// (`follower.rs`).
    pub fn follows_worker(&self) -> bool {
        !self.worker && (self.gateway || self.admin)
    }

    /// The worker of this process commits a relay row with each projector step: a gateway or
    /// an admin app may run in another process and follow it.
    pub fn relays(&self) -> bool {
        self.worker && !(self.gateway && self.admin)
    }

    /// Only the engine: no mirror, no HTTP but health and metrics.
    pub fn engine_only(&self) -> bool {
        self.engine && !(self.gateway || self.wallet || self.worker || self.admin)
    }

    /// The names, comma-separated.
    pub fn names(&self) -> String {
        let on = [self.engine, self.gateway, self.wallet, self.worker, self.admin];
        ROLE_NAMES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Roles, D::Error> {
        let text = String::deserialize(d)?;
        Roles::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `[link]`: the engine link of a split deployment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSettings {
    /// The engine's process: where the other roles connect. Keep it on loopback or a private
    /// network: the link is authenticated (a key derived from `secret_key`), not encrypted.
    pub listen: Option<SocketAddr>,
    /// The other roles' processes: the engine process's `listen` address (`host:port`).
    pub connect: Option<String>,
    /// How long a process without the engine waits for it at start.
    pub connect_wait_s: u64,
}

impl Default for LinkSettings {
    fn default() -> LinkSettings {
        LinkSettings { listen: None, connect: None, connect_wait_s: 60 }
    }
}

impl LinkSettings {
    /// What a process with `roles` needs of these settings.
    pub fn validate(&self, roles: Roles) -> Result<(), String> {
        if !roles.engine && self.connect.is_none() {
            return Err(format!(
                "roles {} run without the engine: set [link] connect to the engine process's \
                 link address",
                roles.names()
            ));
        }
        if roles.engine && !roles.is_all() && self.listen.is_none() {
            return Err(format!(
                "roles {} run the engine without every other role: set [link] listen, or the \
                 processes with the others cannot reach it",
                roles.names()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roles_parse_the_working_combinations_and_refuse_the_others() {
        assert!(Roles::parse("all").unwrap().is_all());
        assert!(Roles::parse("engine,gateway,wallet,worker,admin").unwrap().is_all());
        assert!(Roles::parse(" Engine ").unwrap().engine_only());
        let app = Roles::parse("gateway,wallet,worker,admin").unwrap();
        assert!(!app.engine && app.gateway && app.wallet && app.worker && app.admin);
        assert_eq!(app.names(), "gateway,wallet,worker,admin");
        assert!(Roles::parse("").unwrap_err().contains("no roles"));
        assert!(Roles::parse("engine,gatway").unwrap_err().contains("unknown role \"gatway\""));
        let gateway = Roles::parse("gateway").unwrap();
        assert!(gateway.gateway && !gateway.worker && gateway.follows_worker());
        assert!(!Roles::parse("wallet").unwrap().follows_worker());
        assert!(!Roles::ALL.follows_worker() && !app.follows_worker());
        assert!(!Roles::ALL.relays() && !app.relays() && !gateway.relays());
        assert!(Roles::parse("worker").unwrap().relays());
        assert!(Roles::parse("engine,gateway,worker").unwrap().relays(), "the admin app is apart");
        assert_eq!(Roles::parse("admin, worker").unwrap().names(), "worker,admin");
    }

    #[test]
    fn a_split_process_needs_its_end_of_the_link() {
        let app = Roles::parse("gateway,wallet,worker,admin").unwrap();
        let engine = Roles::parse("engine").unwrap();
        let none = LinkSettings::default();
        assert!(none.validate(Roles::ALL).is_ok());
        assert!(none.validate(app).unwrap_err().contains("[link] connect"));
        assert!(none.validate(engine).unwrap_err().contains("[link] listen"));
        let engine_worker = Roles::parse("engine,worker").unwrap();
        assert!(none.validate(engine_worker).unwrap_err().contains("[link] listen"));
        let set = LinkSettings {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 7420))),
            connect: Some("127.0.0.1:7420".into()),
            connect_wait_s: 1,
        };
        assert!(set.validate(app).is_ok() && set.validate(engine).is_ok());
    }
}
