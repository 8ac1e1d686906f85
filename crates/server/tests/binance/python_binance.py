"""python-binance's Client, unchanged, against a running bourse (REST).

Run by crates/server/tests/binance.rs with BOURSE_URL, KEY and SECRET (see ccxt_rest.py).
"""
import os

from binance.client import Client
from binance.exceptions import BinanceAPIException

client = Client(os.environ["KEY"], os.environ["SECRET"], ping=False)
client.API_URL = os.environ["BOURSE_URL"] + "/api"

client.ping()
assert client.get_server_time()["serverTime"] > 0
info = client.get_symbol_info("BTCUSDT")
assert info["baseAsset"] == "BTC" and info["quoteAsset"] == "USDT", info
book = client.get_order_book(symbol="BTCUSDT", limit=5)
assert book["asks"][0][0] == "60000.000000", book
assert client.get_avg_price(symbol="BTCUSDT")["mins"] == 5
prices = {p["symbol"]: p["price"] for p in client.get_all_tickers()}
assert "BTCUSDT" in prices, prices
assert client.get_orderbook_tickers()
assert client.get_ticker(symbol="BTCUSDT")["symbol"] == "BTCUSDT"

assert client.create_test_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                quantity="0.01", price="50000") == {}
order = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                            quantity="0.01", price="50000", newClientOrderId="pb-1")
assert order["status"] == "NEW" and order["clientOrderId"] == "pb-1", order
assert client.get_order(symbol="BTCUSDT", origClientOrderId="pb-1")["orderId"] == order["orderId"]
assert [o["orderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == [order["orderId"]]
filled = client.order_market_buy(symbol="BTCUSDT", quantity="0.01")
assert filled["status"] == "FILLED" and filled["fills"], filled
assert client.get_my_trades(symbol="BTCUSDT")[-1]["orderId"] == filled["orderId"]
assert len(client.get_all_orders(symbol="BTCUSDT")) == 2
assert client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])["status"] == "CANCELED"
balances = {b["asset"]: b for b in client.get_account()["balances"]}
assert float(balances["BTC"]["free"]) > 2, balances["BTC"]
assert client.get_asset_balance(asset="USDT")["locked"] == "0.000000"
assert client.get_recent_trades(symbol="BTCUSDT")
assert client.get_historical_trades(symbol="BTCUSDT", fromId=0)
assert client.get_klines(symbol="BTCUSDT", interval="1m")
try:
    client.get_order(symbol="BTCUSDT", orderId=999999)
    raise AssertionError("expected an error")
except BinanceAPIException as e:
    assert e.code == -2013 and e.message == "Order does not exist.", (e.code, e.message)
print("ok")
