-- Where each alert sink (e.g. the operator webhook) got to in operator_alerts: the last alert
-- id it delivered. Alerts after it are delivered next, in id order, so none is lost across a
-- restart or a sink that is down.

CREATE TABLE alert_sinks (
    sink    TEXT    PRIMARY KEY,
    last_id BIGINT NOT NULL
);
