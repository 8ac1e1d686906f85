//! `bourse audit`: the ledger's conservation per asset (from the journal, as `replay` rebuilds
//! it) and each configured wallet's holdings on its chain against what users hold there (less
//! withdrawals already sent). Read-only — it takes no lock and writes nothing — so it runs
//! beside a running exchange; the state it reads may then be a few commands behind.
//! The answer is `false` on any mismatch or on a node that cannot be asked.

use crate::serve::{ServeArgs, load_config};
use anyhow::{Context, Result};
use bourse_core::decimal::format_units_trimmed;
use bourse_engine::{ReplayFrom, replay};
use bourse_wallet::chain::Chain;

/// Signed minor units as a decimal.
fn signed(units: i128, scale: u8) -> String {
    let text = format_units_trimmed(units.unsigned_abs(), scale);
    if units < 0 { format!("-{text}") } else { text }
}

/// Prints the report; returns whether everything reconciles.
pub fn run(args: &ServeArgs) -> Result<bool> {
    let config = load_config(args)?;
    let exchange = replay(&config.data_dir, ReplayFrom::LatestSnapshot)
        .with_context(|| format!("cannot read the journal in {}", config.data_dir.display()))?
        .exchange;
    let mut ok = true;
    println!("ledger at seq {}", exchange.seq());
    println!(
        "{:<8} {:>24} {:>20} {:>24} {:>24} {:>16}  conservation",
        "asset", "accounts", "fee account", "deposited", "withdrawn", "adjusted"
    );
    for t in exchange.audit() {
        let Some(asset) = exchange.asset(t.asset) else { continue };
        let scale = asset.spec.scale;
        let balanced = t.balanced();
        ok &= balanced;
        println!(
            "{:<8} {:>24} {:>20} {:>24} {:>24} {:>16}  {}",
            asset.spec.symbol.as_str(),
            signed(t.accounts, scale),
            signed(t.fees, scale),
            format_units_trimmed(t.deposited, scale),
            format_units_trimmed(t.withdrawn, scale),
            signed(t.adjusted, scale),
            if balanced { "ok" } else { "BROKEN" }
        );
    }
    if config.wallets.is_empty() {
        return Ok(ok);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let wallets_ok = rt.block_on(async {
        let store = bourse_store::connect(config.database_url().expose())
            .await
            .context("cannot open the database")?;
        let mut ok = true;
        println!();
        println!(
            "{:<8} {:>24} {:>24} {:>24} {:>20}  wallet",
            "wallet", "users hold", "wallet holds", "shortfall", "tolerance"
        );
        for (symbol, wallet) in &config.wallets {
            let symbol = symbol.to_ascii_uppercase();
            let Some((id, state)) =
                exchange.assets().find(|(_, a)| a.spec.symbol.as_str() == symbol)
            else {
                println!("{symbol:<8} no such asset");
                ok = false;
                continue;
            };
            let scale = state.spec.scale;
            let chain = Chain::open(id, &symbol, scale, wallet).map_err(anyhow::Error::msg)?;
            let open = store.open_withdrawals(id).await?;
            let owed = bourse_wallet::withdrawals::liabilities_of(&exchange, id, &open);
            let tolerance = chain.reconcile_tolerance();
            match chain.holdings(store.as_ref()).await {
                Ok(holdings) => {
                    let shortfall = owed.saturating_sub(holdings);
                    let short = shortfall > i128::try_from(tolerance).unwrap_or(i128::MAX);
                    ok &= !short;
                    println!(
                        "{symbol:<8} {:>24} {:>24} {:>24} {:>20}  {}",
                        signed(owed, scale),
                        signed(holdings, scale),
                        signed(shortfall, scale),
                        format_units_trimmed(tolerance, scale),
                        if short { "SHORT" } else { "ok" }
                    );
                }
                Err(e) => {
                    ok = false;
                    println!(
                        "{symbol:<8} {:>24}  the node cannot be asked: {e}",
                        signed(owed, scale)
                    );
                }
            }
        }
        store.close().await;
        Ok::<_, anyhow::Error>(ok)
    })?;
    Ok(ok && wallets_ok)
}
