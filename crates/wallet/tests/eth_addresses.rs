//! Ether deposit addresses made by several processes over one store (the gateway of one
//! process hands them out, the scanner of another credits them): no HD index is given twice,
//! and each wallet learns of the addresses the others made. No node is needed: making an
//! address only derives a key and records it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_core::AssetId;
use bourse_eth::{Address, Seed};
use bourse_store::{NewDepositAddress, Store, StoreError};
use bourse_wallet::deposits::WalletError;
use bourse_wallet::ethereum::{EthCoin, EthConfig, NEW_ADDRESS_ATTEMPTS, label};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

const PHRASE: &str = "test test test test test test test test test test test junk";
const ETH: AssetId = AssetId(3);

fn coin() -> Arc<EthCoin> {
    let config: EthConfig = toml::from_str(&format!(
        "rpc_url = \"http://127.0.0.1:1\"\nchain_id = 31337\nseed = \"{PHRASE}\"\n\
         addresses_per_user_max = 100"
    ))
    .unwrap();
    Arc::new(EthCoin::new(ETH, "ETH", 18, config).unwrap())
}

/// The address of HD index `index` of the test seed.
fn derived(index: u32) -> Address {
    let seed = Seed::from_phrase(PHRASE, "").unwrap();
    bourse_eth::address_of(&seed.derive(index).unwrap())
}

/// One SQLite database, opened twice as two processes would: two pools, no shared memory.
async fn two_stores(dir: &std::path::Path) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let url = format!("sqlite://{}", dir.join("bourse.db").display());
    let first = bourse_store::connect(&url).await.unwrap();
    first.migrate().await.unwrap();
    let second = bourse_store::connect(&url).await.unwrap();
    (first, second)
}

/// The HD index a label names.
fn index_of(label: &str) -> u32 {
    label.rsplit_once('/').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_wallets_never_hand_out_one_index_and_see_each_others_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let (store_a, store_b) = two_stores(dir.path()).await;
    let mut users = Vec::new();
    for n in 0..4 {
        users.push(store_a.create_user(&format!("u{n}@example.com"), "x", 1).await.unwrap());
    }
    let (coin_a, coin_b) = (coin(), coin());
    // Both have read the (empty) store before the other makes anything.
    assert!(coin_a.addresses(store_a.as_ref()).await.unwrap().is_empty());
    assert!(coin_b.addresses(store_b.as_ref()).await.unwrap().is_empty());

    // Four tasks per wallet, each making five addresses for its user, all at once.
    const EACH: usize = 5;
    let mut tasks = Vec::new();
    for (coin, store) in [(&coin_a, &store_a), (&coin_b, &store_b)] {
        for &user in &users {
            let (coin, store) = (Arc::clone(coin), Arc::clone(store));
            tasks.push(tokio::spawn(async move {
                let mut made = Vec::new();
                for i in 0..EACH {
                    let now = i64::try_from(i).unwrap();
                    made.push(coin.new_address(store.as_ref(), user, now).await.unwrap());
                }
                made
            }));
        }
    }
    let mut rows = Vec::new();
    for task in tasks {
        rows.extend(task.await.unwrap());
    }
    let total = 2 * users.len() * EACH;
    assert_eq!(rows.len(), total);
    let addresses: HashSet<&str> = rows.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(addresses.len(), total, "no address handed out twice");
    let indexes: BTreeSet<u32> = rows.iter().map(|r| index_of(&r.label)).collect();
    assert_eq!(indexes.len(), total, "no index given twice");
    assert!(!indexes.contains(&0), "index 0 is the hot wallet");
    for r in &rows {
        let index = index_of(&r.label);
        assert_eq!(r.address, derived(index).checksummed(), "the address is its index's");
        assert_eq!(r.label, label(r.user, index));
    }

    // Each wallet knows every address, whichever made it, with its owner and index.
    let seen_a = coin_a.addresses(store_a.as_ref()).await.unwrap();
    let seen_b = coin_b.addresses(store_b.as_ref()).await.unwrap();
    assert_eq!(seen_a.len(), total);
    assert_eq!(seen_a, seen_b);
    for r in &rows {
        let address = Address::parse(&r.address).unwrap();
        assert_eq!(seen_a.get(&address), Some(&(r.user, index_of(&r.label))));
    }
    let stored = store_a.asset_deposit_addresses(ETH, 0).await.unwrap();
    assert_eq!(stored.len(), total);

    // One more by B: the next index, and A sees it at its next read.
    let late = coin_b.new_address(store_b.as_ref(), users[0], 100).await.unwrap();
    let late_address = Address::parse(&late.address).unwrap();
    let index = indexes.last().unwrap() + 1;
    assert_eq!(late.address, derived(index).checksummed());
    assert_eq!(
        coin_a.addresses(store_a.as_ref()).await.unwrap().get(&late_address),
        Some(&(users[0], index))
    );
    store_a.close().await;
    store_b.close().await;
}

#[tokio::test]
async fn a_taken_index_is_passed_over_a_bounded_number_of_times() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = two_stores(dir.path()).await;
    let user = store.create_user("u@example.com", "x", 1).await.unwrap();
    let coin = coin();
    let first = coin.new_address(store.as_ref(), user, 1).await.unwrap();
    assert_eq!(first.address, derived(1).checksummed());
    // Something else holds index 2's address under a label this wallet cannot read: the
    // wallet does not know the index is used until the store refuses it, then takes the next.
    let foreign = |index: u32| NewDepositAddress {
        user,
        asset: ETH,
        address: derived(index).checksummed(),
        label: "not this wallet's".into(),
        created_ms: 2,
    };
    store.insert_deposit_address(&foreign(2)).await.unwrap();
    // Refused at 2, it tries 2 + 2 (leaving 3 free: the other would be taking it).
    let next = coin.new_address(store.as_ref(), user, 3).await.unwrap();
    assert_eq!((next.address, next.label), (derived(4).checksummed(), label(user, 4)));
    // Every index it may try taken (5, then 2, 4, 8, 16 further each time): it gives up with
    // the store's refusal.
    let mut tries = Vec::new();
    let mut index = 4;
    for attempt in 0..NEW_ADDRESS_ATTEMPTS {
        index += 1 << attempt;
        tries.push(index);
        store.insert_deposit_address(&foreign(index)).await.unwrap();
    }
    assert_eq!(tries, vec![5, 7, 11, 19, 35]);
    match coin.new_address(store.as_ref(), user, 4).await {
        Err(WalletError::Store(StoreError::Conflict(_))) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    let known = coin.addresses(store.as_ref()).await.unwrap();
    let known: BTreeSet<u32> = known.values().map(|(_, i)| *i).collect();
    assert_eq!(known, BTreeSet::from([1, 4]), "the foreign rows are not the wallet's");
    // The next one is past them (the wallet remembers what the store refused).
    let after = coin.new_address(store.as_ref(), user, 5).await.unwrap();
    assert_eq!(after.address, derived(36).checksummed());
    store.close().await;
}
