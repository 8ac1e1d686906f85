-- Binance-style ranges, PostgreSQL: the indexes behind Store::trades_range, fills_range and
-- orders_range (the /api/v3 lists), which read one market's rows by ascending id from a lower
-- bound, in a time window, or the newest N.
-- trades_market_time: a market's trades in a time window (no lower bound on id), read through
-- it and sorted by id; from an id, and the newest ones, walk the primary key (market_id, id).
-- trades_maker_market, trades_taker_market: a user's trades of one market by id, as maker and as
-- taker (the two branches of fills_range; trades_maker and trades_taker are ordered by seq across
-- markets). One order's fills are still found through trades_maker_order and trades_taker_order.
-- orders_user_market: a user's orders of one market by id (orders_user holds every market's).

CREATE INDEX trades_market_time ON trades (market_id, time_ms);
CREATE INDEX trades_maker_market ON trades (maker_user, market_id, id);
CREATE INDEX trades_taker_market ON trades (taker_user, market_id, id);
CREATE INDEX orders_user_market ON orders (user_id, market_id, id);
