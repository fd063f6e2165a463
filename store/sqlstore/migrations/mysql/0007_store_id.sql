-- The store's identity: random, made once, so that a server can tell the
-- database it was set up with from another one (an empty database behind
-- a changed DSN, a restore of another server's). Store.ID reads it. MySQL
-- commits DDL implicitly: both statements are safe to run again.

CREATE TABLE IF NOT EXISTS {{prefix}}store_meta (
    meta_key   VARCHAR(64) NOT NULL PRIMARY KEY,
    meta_value VARCHAR(64) NOT NULL
);

INSERT IGNORE INTO {{prefix}}store_meta (meta_key, meta_value) VALUES ('store_id', MD5(CONCAT(UUID(), RAND())));
