"""ccxt.pro's `binance` class, unchanged, against a running bourse (WebSocket streams).

Run by crates/server/tests/binance.rs with BOURSE_URL and two users' keys (KEY/SECRET and
MAKER_KEY/MAKER_SECRET), both holding USDT and BTC. The order book watched over the stream
must stay in sync (no ChecksumError) through a storm of orders and cancels from both, and
end equal to the REST snapshot; trades, candles and tickers must arrive, and the taker's
orders, fills and balances over the user data stream. Prints "ok" last.
"""
import asyncio
import os
import random

import ccxt.pro as ccxtpro

BASE = os.environ["BOURSE_URL"]
WS = BASE.replace("http", "ws", 1)
SYMBOL = "BTC/USDT"


def exchange(key, secret):
    return ccxtpro.binance({
        "apiKey": key, "secret": secret, "enableRateLimit": False,
        "urls": {"api": {"public": BASE + "/api/v3", "private": BASE + "/api/v3",
                         "ws": {"spot": WS + "/ws", "ws-api": {"spot": WS + "/ws-api/v3"}}}},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchMargins": False},
    })


async def storm(taker, maker, rounds):
    """Orders that add, change, take and remove levels, from two users at once."""
    rng = random.Random(7)
    open_ids = {taker: [], maker: []}
    for _ in range(rounds):
        calls = []
        for _ in range(10):
            who = rng.choice([taker, maker])
            roll = rng.random()
            if roll < 0.35:
                price = 60000 + 10 * rng.randint(1, 40)
                calls.append((who, who.create_order(SYMBOL, "limit", "sell", 0.001 * rng.randint(1, 9), price)))
            elif roll < 0.7:
                price = 60000 - 10 * rng.randint(0, 40)
                calls.append((who, who.create_order(SYMBOL, "limit", "buy", 0.001 * rng.randint(1, 9), price)))
            elif roll < 0.85:
                side = rng.choice(["buy", "sell"])
                calls.append((who, who.create_order(SYMBOL, "market", side, 0.001 * rng.randint(1, 5))))
            elif open_ids[who]:
                order_id = open_ids[who].pop(rng.randrange(len(open_ids[who])))
                calls.append((who, who.cancel_order(order_id, SYMBOL)))
        results = await asyncio.gather(*(c for _, c in calls), return_exceptions=True)
        for (who, _), result in zip(calls, results):
            if isinstance(result, dict) and result.get("status") == "open":
                open_ids[who].append(result["id"])
            elif isinstance(result, Exception) and not isinstance(result, (ccxtpro.OrderNotFound, ccxtpro.InvalidOrder)):
                raise result


async def main():
    taker = exchange(os.environ["KEY"], os.environ["SECRET"])
    maker = exchange(os.environ["MAKER_KEY"], os.environ["MAKER_SECRET"])
    await asyncio.gather(taker.load_markets(), maker.load_markets())

    # The book: subscribed and synced from the REST snapshot before the storm.
    await taker.watch_order_book(SYMBOL)
    done = asyncio.Event()
    updates = 0

    async def follow():
        nonlocal updates
        while not done.is_set():
            try:
                await asyncio.wait_for(taker.watch_order_book(SYMBOL), 1)
                updates += 1
            except asyncio.TimeoutError:
                pass

    follower = asyncio.create_task(follow())
    await storm(taker, maker, 30)
    done.set()
    await follower  # re-raises a ChecksumError or any other failure
    assert updates > 10, updates

    snapshot = await taker.fetch_order_book(SYMBOL, 1000)
    for _ in range(100):
        local = taker.orderbooks[SYMBOL]
        if local["nonce"] == snapshot["nonce"]:
            break
        await asyncio.sleep(0.05)
    local = taker.orderbooks[SYMBOL]
    assert local["nonce"] == snapshot["nonce"], (local["nonce"], snapshot["nonce"])
    assert local["bids"][:50] == snapshot["bids"][:50], (local["bids"][:5], snapshot["bids"][:5])
    assert local["asks"][:50] == snapshot["asks"][:50], (local["asks"][:5], snapshot["asks"][:5])

    # Trades, candles and the ticker arrive after a trade.
    async def trade_soon():
        await asyncio.sleep(0.3)
        await maker.create_order(SYMBOL, "limit", "sell", 0.002, 59000)
        await taker.create_order(SYMBOL, "market", "buy", 0.002)

    trader = asyncio.create_task(trade_soon())
    trades, candles, ticker = await asyncio.wait_for(asyncio.gather(
        taker.watch_trades(SYMBOL), taker.watch_ohlcv(SYMBOL, "1m"), taker.watch_ticker(SYMBOL)), 20)
    await trader
    assert trades and trades[-1]["symbol"] == SYMBOL and trades[-1]["price"] > 0, trades
    assert candles and len(candles[-1]) == 6 and candles[-1][5] > 0, candles
    assert ticker["symbol"] == SYMBOL and ticker["last"] > 0, ticker

    # The user data stream (WebSocket API): orders, fills and balances of the taker. The book
    # is cleared of both users' orders first, so the taker's buy meets the maker's sell.
    for who in (taker, maker):
        try:
            await who.cancel_all_orders(SYMBOL)
        except ccxtpro.OrderNotFound:
            pass
    low = (await taker.fetch_order_book(SYMBOL, 1000))["asks"][0][0]
    price = low - 100

    async def user_activity():
        await asyncio.sleep(0.5)
        await maker.create_order(SYMBOL, "limit", "sell", 0.004, price)
        await taker.create_order(SYMBOL, "limit", "buy", 0.004, price)

    activity = asyncio.create_task(user_activity())
    orders, fills, balance = await asyncio.wait_for(asyncio.gather(
        taker.watch_orders(SYMBOL), taker.watch_my_trades(SYMBOL), taker.watch_balance()), 20)
    await activity
    assert orders and orders[-1]["symbol"] == SYMBOL and orders[-1]["amount"] == 0.004, orders
    assert fills and fills[-1]["price"] == price and fills[-1]["fee"]["currency"] == "USDT", fills
    assert balance["BTC"]["free"] is not None and balance["USDT"]["free"] is not None, balance
    await asyncio.gather(taker.close(), maker.close())
    print(f"book updates followed: {updates}")
    print("ok")


asyncio.run(main())
