//! Operator commands: `bourse migrate`, `bourse asset add`, `bourse market add|edit|halt|resume`,
//! `bourse order cancel`, `bourse user lock|unlock`. Engine commands (assets, markets, orders) are journaled like any other:
//! the command opens the data directory's engine itself, so the exchange must be stopped (the
//! data directory lock says so clearly if it is not). `user lock|unlock` needs only the
//! database and runs beside the exchange.

use crate::serve::{ServeArgs, load_config};
use anyhow::{Context, Result};
use bourse_core::{Command, Event, MarketStatus};
use bourse_engine::{Engine, EngineConfig, SystemClock};
use bourse_server::market_setup::{self, MarketText};

pub fn migrate(args: &ServeArgs) -> Result<()> {
    let config = load_config(args)?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!("cannot create the data directory {}", config.data_dir.display())
    })?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let store = bourse_store::connect(config.database_url().expose())
            .await
            .context("cannot open the database")?;
        let applied = store.migrate().await.context("migration failed")?;
        println!("{} database: {applied} migration(s) applied", store.backend());
        store.close().await;
        Ok(())
    })
}

fn with_engine(args: &ServeArgs, command: Command) -> Result<Vec<Event>> {
    let config = load_config(args)?;
    let engine =
        Engine::start(EngineConfig::new(&config.data_dir), SystemClock).with_context(|| {
            format!(
                "cannot open the exchange in {} (stop `bourse serve` first)",
                config.data_dir.display()
            )
        })?;
    let outcome = engine.handle().execute_blocking(command)?;
    engine.shutdown();
    if let Some(reason) = outcome.events.iter().find_map(|e| match e {
        Event::Rejected { reason, .. } => Some(*reason),
        _ => None,
    }) {
        anyhow::bail!("refused: {reason}");
    }
    Ok(outcome.events)
}

pub fn asset_add(args: &ServeArgs, symbol: &str, scale: u8) -> Result<()> {
    let spec = market_setup::asset_spec(symbol, scale).map_err(anyhow::Error::msg)?;
    for event in with_engine(args, Command::AddAsset(spec))? {
        if let Event::AssetAdded { asset, spec } = event {
            println!("asset {} added with id {asset} (scale {})", spec.symbol, spec.scale);
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct MarketAddArgs {
    /// BASE/QUOTE, e.g. BTC/USDT.
    pub symbol: String,
    /// Price step in quote units, e.g. 0.01.
    #[arg(long)]
    pub tick: String,
    /// Quantity step in base units, e.g. 0.0001.
    #[arg(long)]
    pub lot: String,
    #[arg(long)]
    pub min_qty: Option<String>,
    #[arg(long)]
    pub max_qty: Option<String>,
    #[arg(long, default_value = "0")]
    pub min_notional: String,
    /// Fee rates in parts per million (1000 = 0.1 %).
    #[arg(long, default_value_t = market_setup::DEFAULT_MAKER_FEE_PPM)]
    pub maker_fee_ppm: u32,
    #[arg(long, default_value_t = market_setup::DEFAULT_TAKER_FEE_PPM)]
    pub taker_fee_ppm: u32,
}

/// Finds the engine ids of a market's assets by replaying the current state.
fn state(args: &ServeArgs) -> Result<bourse_core::Exchange> {
    let config = load_config(args)?;
    Ok(bourse_engine::replay(&config.data_dir, bourse_engine::ReplayFrom::LatestSnapshot)?.exchange)
}

pub fn market_add(args: &ServeArgs, m: &MarketAddArgs) -> Result<()> {
    let exchange = state(args)?;
    let (base, quote) =
        m.symbol.split_once(['/', '-']).context("market symbol must be BASE/QUOTE")?;
    let find = |s: &str| {
        exchange
            .assets()
            .find(|(_, a)| a.spec.symbol.as_str().eq_ignore_ascii_case(s))
            .map(|(id, a)| market_setup::Side { id, scale: a.spec.scale })
            .with_context(|| format!("unknown asset {s}; add it with `bourse asset add`"))
    };
    let (base, quote) = (find(base)?, find(quote)?);
    drop(exchange);
    let text = MarketText {
        tick: Some(&m.tick),
        lot: Some(&m.lot),
        min_qty: m.min_qty.as_deref(),
        max_qty: m.max_qty.as_deref(),
        min_notional: Some(&m.min_notional),
        maker_fee_ppm: Some(m.maker_fee_ppm),
        taker_fee_ppm: Some(m.taker_fee_ppm),
    };
    let spec = market_setup::new_market(base, quote, &text).map_err(anyhow::Error::msg)?;
    for event in with_engine(args, Command::AddMarket(spec))? {
        if let Event::MarketAdded { market, .. } = event {
            println!("market {} added with id {market}", m.symbol.to_ascii_uppercase());
        }
    }
    Ok(())
}

/// The market `BASE/QUOTE` (or `BASE-QUOTE`) of `exchange`.
fn find_market(exchange: &bourse_core::Exchange, symbol: &str) -> Result<bourse_core::MarketId> {
    let (base, quote) =
        symbol.split_once(['/', '-']).context("market symbol must be BASE/QUOTE")?;
    exchange
        .market_ids()
        .find(|id| {
            exchange.market_spec(*id).is_some_and(|(spec, _)| {
                let name =
                    |a| exchange.asset(a).map(|s| s.spec.symbol.as_str().to_ascii_uppercase());
                name(spec.base).as_deref() == Some(&base.to_ascii_uppercase())
                    && name(spec.quote).as_deref() == Some(&quote.to_ascii_uppercase())
            })
        })
        .with_context(|| format!("unknown market {symbol}"))
}

#[derive(Debug, clap::Args)]
pub struct MarketEditArgs {
    /// BASE/QUOTE, e.g. BTC/USDT.
    pub symbol: String,
    /// A new price step in quote units; resting orders must sit on it.
    #[arg(long)]
    pub tick: Option<String>,
    /// A new quantity step in base units.
    #[arg(long)]
    pub lot: Option<String>,
    #[arg(long)]
    pub min_qty: Option<String>,
    #[arg(long)]
    pub max_qty: Option<String>,
    #[arg(long)]
    pub min_notional: Option<String>,
    /// Fee rates in parts per million; resting orders keep at most the rate they reserved.
    #[arg(long)]
    pub maker_fee_ppm: Option<u32>,
    #[arg(long)]
    pub taker_fee_ppm: Option<u32>,
}

/// `bourse market edit`: changes a market's grid, limits or fees (engine commands; the
/// exchange must be stopped). What is not given stays as it is.
pub fn market_edit(args: &ServeArgs, m: &MarketEditArgs) -> Result<()> {
    let exchange = state(args)?;
    let market = find_market(&exchange, &m.symbol)?;
    let (spec, _) = exchange.market_spec(market).context("unknown market")?;
    let scale = |a| exchange.asset(a).map(|s| s.spec.scale).context("unknown asset");
    let (bs, qs) = (scale(spec.base)?, scale(spec.quote)?);
    let fees_now = (spec.maker_fee_ppm, spec.taker_fee_ppm);
    drop(exchange);
    let text = MarketText {
        tick: m.tick.as_deref(),
        lot: m.lot.as_deref(),
        min_qty: m.min_qty.as_deref(),
        max_qty: m.max_qty.as_deref(),
        min_notional: m.min_notional.as_deref(),
        maker_fee_ppm: m.maker_fee_ppm,
        taker_fee_ppm: m.taker_fee_ppm,
    };
    let (change, fees) =
        market_setup::edit_market(bs, qs, fees_now, &text).map_err(anyhow::Error::msg)?;
    let symbol = m.symbol.to_ascii_uppercase();
    if let Some(change) = change {
        with_engine(args, Command::ChangeMarket { market, change })?;
        println!("market {symbol}: grid and limits changed");
    }
    if let Some((maker_fee_ppm, taker_fee_ppm)) = fees {
        with_engine(args, Command::SetFees { market, maker_fee_ppm, taker_fee_ppm })?;
        println!("market {symbol}: fees maker {maker_fee_ppm} ppm, taker {taker_fee_ppm} ppm");
    }
    Ok(())
}

pub fn market_status(args: &ServeArgs, symbol: &str, status: MarketStatus) -> Result<()> {
    let exchange = state(args)?;
    let market = find_market(&exchange, symbol)?;
    drop(exchange);
    with_engine(args, Command::SetMarketStatus { market, status })?;
    println!("market {} is now {status:?}", symbol.to_ascii_uppercase());
    Ok(())
}

/// `bourse user lock|unlock ID-OR-EMAIL`: a locked user cannot log in, use API keys (a running
/// server's key cache forgets them within a minute) or withdraw; locking also ends every
/// session. Needs only the database, so it runs while the exchange does. The admin app does
/// the same with an audited reason; this is for an operator at the machine.
pub fn user_lock(args: &ServeArgs, who: &str, lock: bool) -> Result<()> {
    let config = load_config(args)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let store = bourse_store::connect(config.database_url().expose())
            .await
            .context("cannot open the database")?;
        store.migrate().await.context("cannot migrate the database")?;
        let done = async {
            let user = match who.parse::<u64>() {
                Ok(id) => store.user(bourse_core::UserId(id)).await?,
                Err(_) => store.user_by_email(&who.trim().to_lowercase()).await?,
            }
            .with_context(|| format!("no user {who}"))?;
            let now = bourse_server::now_ms();
            store.set_user_locked(user.id, lock.then_some(now)).await?;
            if lock {
                let ended = store.revoke_sessions(user.id, None).await?;
                println!("user {} ({}) locked; {ended} session(s) ended", user.id.0, user.email);
            } else {
                println!("user {} ({}) unlocked", user.id.0, user.email);
            }
            Ok::<_, anyhow::Error>(())
        };
        let result = done.await;
        store.close().await;
        result
    })
}

/// `bourse order cancel ORDER --user USER`: cancels a resting order through the engine (the
/// exchange must be stopped), as its owner could. The admin app is the place for a running
/// exchange.
pub fn order_cancel(args: &ServeArgs, order: u64, user: u64) -> Result<()> {
    let command = Command::Cancel {
        user: bourse_core::UserId(user),
        market: None,
        order: bourse_core::OrderRef::Id(bourse_core::OrderId(order)),
    };
    for event in with_engine(args, command)? {
        if let Event::OrderEnded { order, remaining, .. } = event {
            println!("order {order} of user {user} canceled ({remaining} minor units unfilled)");
        }
    }
    Ok(())
}
