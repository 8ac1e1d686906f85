"""ccxt's `binance` class, unchanged, against a running bourse (REST).

Run by crates/server/tests/binance.rs with BOURSE_URL, KEY and SECRET of a user holding
USDT and BTC; another user rests a sell of 1.5 BTC at 60000 on BTC/USDT. Every check is an
assert; the last line printed is "ok".
"""
import os

import ccxt

BASE = os.environ["BOURSE_URL"]


def exchange(secret=None):
    return ccxt.binance({
        "apiKey": os.environ["KEY"],
        "secret": secret or os.environ["SECRET"],
        "enableRateLimit": False,
        "urls": {"api": {"public": BASE + "/api/v3", "private": BASE + "/api/v3"}},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchMargins": False},
    })


def raises(kind, call):
    try:
        call()
    except kind as e:
        return e
    raise AssertionError(f"expected {kind.__name__}")


ex = exchange()
markets = ex.load_markets()
m = markets["BTC/USDT"]
assert m["active"] and m["spot"], m
assert m["precision"]["price"] == 0.01 and m["precision"]["amount"] == 0.0001, m["precision"]
assert m["limits"]["amount"]["min"] == 0.0001, m["limits"]
assert "ETH/BTC" in markets

ticker = ex.fetch_ticker("BTC/USDT")
assert ticker["ask"] == 60000.0, ticker
tickers = ex.fetch_tickers()
assert {"BTC/USDT", "ETH/USDT", "ETH/BTC"} <= set(tickers), tickers.keys()
book = ex.fetch_order_book("BTC/USDT", 5)
assert book["asks"][0] == [60000.0, 1.5], book
assert book["nonce"] > 0

balance = ex.fetch_balance()
assert balance["USDT"]["free"] == 100000.0, balance["USDT"]
assert balance["BTC"]["free"] == 2.0, balance["BTC"]

# Each order type.
rest = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
assert rest["status"] == "open" and rest["amount"] == 0.01, rest
maker = ex.create_order("BTC/USDT", "limit", "sell", 0.01, 70000, {"postOnly": True})
assert maker["status"] == "open" and maker["postOnly"], maker
ioc = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"timeInForce": "IOC"})
assert ioc["status"] == "expired", ioc
fok = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 60000, {"timeInForce": "FOK"})
assert fok["status"] == "closed" and fok["filled"] == 0.01, fok
market_buy = ex.create_order("BTC/USDT", "market", "buy", 0.02)
assert market_buy["status"] == "closed" and market_buy["filled"] == 0.02, market_buy
assert market_buy["fee"]["currency"] == "USDT" and market_buy["fee"]["cost"] > 0, market_buy
by_cost = ex.create_order("BTC/USDT", "market", "buy", 0.01, 60000)  # quoteOrderQty=600
assert by_cost["status"] == "closed" and by_cost["cost"] <= 600, by_cost
sold = ex.create_order("BTC/USDT", "market", "sell", 0.001)
assert sold["status"] in ("closed", "expired"), sold

got = ex.fetch_order(rest["id"], "BTC/USDT")
assert got["id"] == rest["id"] and got["status"] == "open", got
open_orders = ex.fetch_open_orders("BTC/USDT")
assert {o["id"] for o in open_orders} == {rest["id"], maker["id"]}, open_orders
orders = ex.fetch_orders("BTC/USDT")
assert len(orders) >= 6, orders
trades = ex.fetch_my_trades("BTC/USDT")
assert len(trades) >= 3 and all(t["fee"]["currency"] == "USDT" for t in trades), trades
public_trades = ex.fetch_trades("BTC/USDT")
assert len(public_trades) >= 3 and public_trades[-1]["price"] == 60000.0, public_trades
candles = ex.fetch_ohlcv("BTC/USDT", "1m")
assert candles and candles[-1][4] == 60000.0, candles

canceled = ex.cancel_order(rest["id"], "BTC/USDT")
assert canceled["status"] == "canceled", canceled
ex.cancel_all_orders("BTC/USDT")
assert ex.fetch_open_orders("BTC/USDT") == []

# Errors where Binance raises them.
raises(ccxt.InsufficientFunds, lambda: ex.create_order("BTC/USDT", "limit", "buy", 100, 50000))
raises(ccxt.InvalidOrder, lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.00001, 50000))
raises(ccxt.OrderNotFound, lambda: ex.fetch_order("999999", "BTC/USDT"))
raises(ccxt.OrderNotFound, lambda: ex.cancel_order("999999", "BTC/USDT"))
raises(ccxt.OrderNotFound, lambda: ex.cancel_all_orders("BTC/USDT"))
raises(ccxt.BadSymbol, lambda: ex.publicGetTickerPrice({"symbol": "NOPENOPE"}))
raises(ccxt.AuthenticationError, lambda: exchange("wrong secret").fetch_balance())
print("ok")
